"""Services run on uvloop when installed, with the collector tuned for long-lived state."""

from __future__ import annotations

import asyncio
import gc

from fogmesh._eventloop import GC_THRESHOLDS, run_service


def test_run_service_returns_the_result_on_uvloop_with_the_gc_tuned() -> None:
    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    old = gc.get_threshold()
    try:
        assert run_service(main()).startswith("uvloop")  # the server extra installs it
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0  # what the imports left alive is out of collection
    finally:
        gc.unfreeze()
        gc.set_threshold(*old)


def test_an_agent_may_ask_for_the_stdlib_loop() -> None:
    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    old = gc.get_threshold()
    try:
        assert run_service(main(), fast_loop=False).startswith("asyncio")
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*old)
