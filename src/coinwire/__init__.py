"""coinwire: a self-hosted crypto trading and portfolio platform."""

__version__ = "0.1.0"
