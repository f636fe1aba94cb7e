"""Throughput benchmarks: each module has run() -> dict and runs as `python -m benchmarks.<name>`."""
