"""fogmesh.logs: one format for every logger, and per-task lines at a bounded rate."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from fogmesh.errors import ConfigError
from fogmesh.logs import TaskLog, configure_logging, resolve_log_settings


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _collect(level: int) -> tuple[logging.Logger, list[logging.LogRecord]]:
    logger = logging.getLogger(f"test.tasklog.{level}")
    logger.propagate = False
    logger.handlers.clear()
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.addHandler(Keep())
    logger.setLevel(level)
    return logger, records


def test_task_lines_beyond_the_budget_are_counted_and_summed_up() -> None:
    logger, records = _collect(logging.INFO)
    clock = Clock()
    tasks = TaskLog(logger, rate=1.0, burst=3, window=10.0, clock=clock)
    for i in range(10):
        tasks.info("completed", "task %s completed", f"t{i}", task_id=f"t{i}")
    assert [r.getMessage() for r in records] == [f"task t{i} completed" for i in range(3)]
    assert records[0].__dict__["task_id"] == "t0"
    clock.now += 2.0  # two seconds earn two lines back (1 a second)
    tasks.info("failed", "task %s failed", "x1")
    tasks.info("failed", "task %s failed", "x2")
    tasks.info("failed", "task %s failed", "x3")  # over budget again
    assert [r.getMessage() for r in records][-2:] == ["task x1 failed", "task x2 failed"]
    clock.now += 10.0
    tasks.info("completed", "task %s completed", "late")  # no loop: summary comes with an event
    summary = [r.getMessage() for r in records if r.__dict__.get("event") == "summary"]
    assert summary and "7 completed" in summary[0] and "1 failed" in summary[0], summary


def test_debug_level_shows_every_task_line_and_warning_none() -> None:
    logger, records = _collect(logging.DEBUG)
    tasks = TaskLog(logger, rate=1.0, burst=1, clock=Clock())
    for i in range(5):
        tasks.info("started", "task %s started", i)
    assert len(records) == 5
    quiet, none = _collect(logging.WARNING)
    TaskLog(quiet, clock=Clock()).info("started", "task %s started", 1)
    assert none == []


async def test_summary_is_written_after_the_window_without_further_events() -> None:
    logger, records = _collect(logging.INFO)
    summed = asyncio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.__dict__.get("event") == "summary":
                summed.set()

    logger.addHandler(Watch())
    tasks = TaskLog(logger, rate=1.0, burst=1, window=0.01)
    tasks.info("completed", "a")
    tasks.info("completed", "b")  # held
    async with asyncio.timeout(5):
        await summed.wait()
    assert "1 completed" in records[-1].getMessage()


def test_json_format_is_one_object_per_line_with_fields_and_traceback(
    restore_root: None,
) -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    log = logging.getLogger("fogmesh.test")
    log.info("task %s placed\non two lines", "T1", extra={"task_id": "T1", "event": "placed"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it broke")
    logging.getLogger("uvicorn.error").info("from uvicorn")
    log.debug("not shown")
    lines = out.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]
    assert len(entries) == 3
    assert entries[0]["message"] == "task T1 placed\non two lines"
    assert entries[0]["task_id"] == "T1" and entries[0]["event"] == "placed"
    assert entries[0]["level"] == "info" and entries[0]["logger"] == "fogmesh.test"
    assert "ValueError: boom" in entries[1]["exc"]
    assert entries[2]["logger"] == "uvicorn.error"


def test_text_format_and_a_second_call_replaces_the_handler(restore_root: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "text", stream=first)
    configure_logging("warning", "text", stream=second)
    logging.getLogger("alembic.runtime.migration").warning("schema %s", "v2")
    logging.getLogger("fogmesh.x").info("quiet")
    assert first.getvalue() == ""
    assert second.getvalue().rstrip().endswith("WARNING alembic.runtime.migration: schema v2")


def test_settings_come_from_flags_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOGMESH_LOG_LEVEL", raising=False)
    monkeypatch.delenv("FOGMESH_LOG_FORMAT", raising=False)
    assert resolve_log_settings(None, None) == ("info", "text")
    monkeypatch.setenv("FOGMESH_LOG_LEVEL", "WARN")
    monkeypatch.setenv("FOGMESH_LOG_FORMAT", "json")
    assert resolve_log_settings(None, None) == ("warning", "json")
    assert resolve_log_settings("debug", "text") == ("debug", "text")
    with pytest.raises(ConfigError, match="choose from debug, info"):
        resolve_log_settings("loud", None)
    with pytest.raises(ConfigError, match="text, json"):
        resolve_log_settings(None, "xml")
