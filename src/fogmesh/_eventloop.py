"""Run a long-lived service's main coroutine on the fastest event loop available.

uvloop (installed with the ``server`` extra, through ``uvicorn[standard]``) keeps socket readiness
in libuv: the stdlib selector loop re-registers a socket with epoll each time uvicorn's WebSocket
protocol pauses and resumes reading, which measured as a quarter of the coordinator's CPU under
2,000 heartbeating agents. Without uvloop (another platform, or an agent-only install) the stdlib
loop runs the same code. The agent asks for the stdlib loop (``fast_loop=False``): with one
socket and a few pipes it has nothing for uvloop to save — tiny tasks ran no faster on it (a
median 1,700/s against 1,830/s end to end, six bursts each) and it cost 2–2.7 MB of the agent's
idle memory.

The garbage collector is tuned for a service, too. A heartbeat's objects (its profile, the
device's new record and scheduler view) live about one heartbeat interval; with CPython's default
thresholds (a young collection every 700 allocations) they survive two young collections and are
promoted to the oldest generation long before they die, so full collections come every few
seconds — and one over 2,000 agents' sessions took 125–520 ms, which was the whole of the
heartbeat-ack p99 (577 ms; 18–20 ms after this change). So: everything alive once the imports are
done is frozen out of collection (it lives as long as the process), and a young collection waits
for 10,000 net allocations instead of 700 (a heartbeat's objects replace the last one's, so a
steady fleet allocates almost nothing net and is hardly ever collected; 50,000 made each young
collection during a connect storm long enough to show in the registration p99). Objects are
still freed by reference counting the moment they are unreferenced; only cycles wait for a
collection.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

__all__ = ["run_service"]

T = TypeVar("T")

GC_THRESHOLDS: Final = (10_000, 10, 10)


def run_service(main: Coroutine[Any, Any, T], *, fast_loop: bool = True) -> T:
    """Run ``main`` to completion; on uvloop when ``fast_loop`` and it is installed."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    if not fast_loop:
        return asyncio.run(main)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
