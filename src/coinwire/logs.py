"""Structured logging setup for the process (structlog over the standard library)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "forward_warnings"]

# Where warning and error records also go (`services.log_feed.LogFeed.forward`): (source, level, fields)
_forwarders: list[Callable[[str, str, dict[str, Any]], None]] = []
_FORWARDED = frozenset({"warning", "error", "critical", "exception"})


def forward_warnings(forwarder: Callable[[str, str, dict[str, Any]], None] | None) -> None:
    """Send every later warning and error record to `forwarder` as well (None: to no one); the `logmessages` feed."""
    _forwarders.clear()
    if forwarder is not None:
        _forwarders.append(forwarder)


def _forward(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Processor: a warning or error goes to the forwarder too; other levels pass with one set lookup."""
    if method_name in _FORWARDED and _forwarders:
        for forwarder in _forwarders:
            forwarder(getattr(logger, "name", "coinwire"), method_name, event_dict)
    return event_dict


class _ForwardHandler(logging.Handler):
    """The standard library's warning and error records (the bus logs through it) go to the forwarder too."""

    def emit(self, record: logging.LogRecord) -> None:
        if _forwarders:
            fields: dict[str, Any] = {"event": record.getMessage()}
            if record.exc_info and record.exc_info[1] is not None:
                fields["error"] = repr(record.exc_info[1])
            for forwarder in _forwarders:
                forwarder(record.name, record.levelname.lower(), fields)


class _NamedPrintLogger(structlog.PrintLogger):
    """A PrintLogger that remembers the name it was asked for (`get_logger("coinwire.gateway")`): a log message's source."""

    def __init__(self, file: TextIO | None, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedPrintLoggerFactory:
    def __init__(self, file: TextIO | None) -> None:
        self._file = file

    def __call__(self, *args: Any) -> structlog.PrintLogger:
        return _NamedPrintLogger(self._file, str(args[0]) if args else "coinwire")


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines at `level` and above, to stdout (a server) or `stream` (stderr when stdout carries a CLI's answer)."""
    logging.basicConfig(level=level.upper(), format="%(message)s", stream=stream or sys.stdout)
    ours = logging.getLogger("coinwire")
    if not any(isinstance(h, _ForwardHandler) for h in ours.handlers):
        ours.addHandler(_ForwardHandler(logging.WARNING))
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            _forward,  # type: ignore[list-item]  # structlog passes the dict it builds
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_NamedPrintLoggerFactory(stream or sys.stdout),
    )
