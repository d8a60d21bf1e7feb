"""One log format for every fogmesh process, and per-task lines that cost the hot path nothing.

``configure_logging(level, fmt)`` installs one handler on the root logger, as text
(``time level logger: message``) or as JSON (one object per line: ``time``, ``level``,
``logger``, ``message``, the task/device fields a line carries, ``exc`` for a traceback). Every
library logger propagates to it: uvicorn is started with ``log_config=None`` (so it installs no
handlers of its own) and Alembic's ``fileConfig`` is never called (our ``env.py`` does not read
an ini file), so their lines come out in the same format. ``FOGMESH_LOG_LEVEL`` and
``FOGMESH_LOG_FORMAT`` give the defaults the command-line flags override.

``TaskLog``: the coordinator and the agents say at info level what happens to each task, yet a fog
runs tiny tasks at ~2,700/s end to end, where a formatted line per event (three or four per
task) would cost several percent of a core. So per-task lines go out at info up to a budget
(``rate`` a second, bursts of ``burst``): someone watching a few tasks sees every one; under a
flood the rest are counted, and one summary line per ``window`` says how many of each kind were
not shown. A suppressed event costs an ``isEnabledFor`` check, a clock read and a dict update
(well under a microsecond); the arguments are formatted only for lines that are written. With
the level at debug every line is written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any, Final

from fogmesh.errors import ConfigError

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JsonFormatter",
    "TaskLog",
    "configure_logging",
    "resolve_log_settings",
]

LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Fields a line may carry (``extra=``) that a JSON consumer can filter on.
_FIELDS: Final = ("event", "task_id", "device_id", "attempt", "reason")
# Loggers of libraries we run under; whatever handlers they brought are dropped so that their
# lines reach ours once, in our format.
_LIBRARY_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "alembic")


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``json.dumps`` escapes newlines inside messages)."""

    def format(self, record: logging.LogRecord) -> str:
        value: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            field = record.__dict__.get(name)
            if field is not None:
                value[name] = field
        if record.exc_info:
            value["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            value["exc"] = record.exc_text
        if record.stack_info:
            value["stack"] = self.formatStack(record.stack_info)
        return json.dumps(value, default=str, ensure_ascii=False)


class _Installed(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler configure_logging installed, so a second call replaces it."""


def resolve_log_settings(level: str | None, fmt: str | None) -> tuple[str, str]:
    """``level`` and ``fmt`` (flags) over ``FOGMESH_LOG_LEVEL``/``FOGMESH_LOG_FORMAT`` over
    info/text; a ``ConfigError`` naming the choices for anything else."""
    chosen_level = (level or os.environ.get("FOGMESH_LOG_LEVEL") or "info").strip().lower()
    chosen_fmt = (fmt or os.environ.get("FOGMESH_LOG_FORMAT") or "text").strip().lower()
    if chosen_level == "warn":
        chosen_level = "warning"
    if chosen_level not in LOG_LEVELS:
        raise ConfigError(
            f"unknown log level {chosen_level!r}; choose from {', '.join(LOG_LEVELS)}",
            field="--log-level",
        )
    if chosen_fmt not in LOG_FORMATS:
        raise ConfigError(
            f"unknown log format {chosen_fmt!r}; choose from {', '.join(LOG_FORMATS)}",
            field="--log-format",
        )
    return chosen_level, chosen_fmt


def configure_logging(
    level: str | None = None, fmt: str | None = None, *, stream: IO[str] | None = None
) -> tuple[str, str]:
    """Send every logger's lines to ``stream`` (stderr) in one format; returns the level and
    format chosen (see ``resolve_log_settings``)."""
    chosen_level, chosen_fmt = resolve_log_settings(level, fmt)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Installed)]:
        root.removeHandler(old)
    handler = _Installed(stream if stream is not None else sys.stderr)
    formatter = JsonFormatter() if chosen_fmt == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(chosen_level.upper())
    for name in _LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
        library.setLevel(logging.NOTSET)
    # Alembic announces each of its autogenerate plugins at info when it is imported: noise at
    # every start, about code the coordinator never runs. Its migrations still log at info.
    logging.getLogger("alembic.runtime.plugins").setLevel(
        max(logging.getLevelName(chosen_level.upper()), logging.WARNING)
    )
    return chosen_level, chosen_fmt


class TaskLog:
    """Per-task info lines at a bounded rate; the rest counted and summed up (module doc)."""

    __slots__ = (
        "_burst",
        "_clock",
        "_held",
        "_held_since",
        "_last",
        "_logger",
        "_rate",
        "_summary",
        "_tokens",
        "_window",
    )

    def __init__(
        self,
        logger: logging.Logger,
        *,
        rate: float = 10.0,
        burst: float = 50.0,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._rate = rate
        self._burst = burst
        self._window = window
        self._clock = clock
        self._tokens = burst
        self._last = clock()
        self._held: dict[str, int] = {}
        self._held_since = 0.0
        self._summary: asyncio.TimerHandle | None = None

    def info(
        self,
        event: str,
        msg: str,
        *args: object,
        task_id: str | None = None,
        device_id: str | None = None,
    ) -> None:
        """``msg % args`` at info, unless over budget (then only counted under ``event``)."""
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        now = self._clock()
        tokens = self._tokens + (now - self._last) * self._rate
        self._last = now
        if tokens > self._burst:
            tokens = self._burst
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
        elif logger.isEnabledFor(logging.DEBUG):
            self._tokens = tokens
        else:
            self._tokens = tokens
            self._hold(event, now)
            return
        if self._held and self._summary is None and now - self._held_since >= self._window:
            self.flush()  # no event loop to time the summary: it goes out with this line
        logger.info(msg, *args, extra={"event": event, "task_id": task_id, "device_id": device_id})

    def _hold(self, event: str, now: float) -> None:
        held = self._held
        if not held:
            self._held_since = now
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: the summary goes out with a later event
                pass
            else:
                self._summary = loop.call_later(self._window, self.flush)
        held[event] = held.get(event, 0) + 1
        if self._summary is None and now - self._held_since >= self._window:
            self.flush()

    def flush(self) -> None:
        """Write the summary of the lines held back so far (if any)."""
        if self._summary is not None:
            self._summary.cancel()
            self._summary = None
        if not self._held:
            return
        held, self._held = self._held, {}
        seconds = max(0.0, self._clock() - self._held_since)
        counts = ", ".join(f"{n:,} {event}" for event, n in sorted(held.items()))
        self._logger.info(
            "task lines over %g a second not shown (last %.0f s): %s; "
            "FOGMESH_LOG_LEVEL=debug shows them all",
            self._rate,
            seconds,
            counts,
            extra={"event": "summary"},
        )
