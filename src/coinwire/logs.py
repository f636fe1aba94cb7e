"""Structured logging setup for the process (structlog over the standard library)."""

from __future__ import annotations

import logging

import structlog

__all__ = ["configure_logging"]


def configure_logging(level: str = "info") -> None:
    logging.basicConfig(level=level.upper(), format="%(message)s")
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
    )
