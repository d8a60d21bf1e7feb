"""Prometheus text exposition (format 0.0.4), written by hand: a few counters and histograms.

Gauges (devices by status and power mode, queue depth by priority, tasks by state) are read from
the coordinator at scrape time, so they cannot drift from the state they describe.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = ["Histogram", "Metrics", "render"]

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Histogram:
    __slots__ = ("buckets", "count", "counts", "total")

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        value = max(0.0, value)
        i = bisect.bisect_left(self.buckets, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.count += 1
        self.total += value

    def lines(self, name: str) -> Iterable[str]:
        running = 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            running += n
            yield f'{name}_bucket{{le="{bound:g}"}} {running}'
        yield f'{name}_bucket{{le="+Inf"}} {self.count}'
        yield f"{name}_sum {self.total:.6f}"
        yield f"{name}_count {self.count}"


class Metrics:
    """What the service counts itself (the rest is read from the coordinator when scraped)."""

    def __init__(self) -> None:
        self.results: Counter[str] = Counter()  # by runner status
        self.refusals = 0
        self.stale_reports = 0
        self.reports_deferred = 0  # reports the store could not take then (sent again)
        self.dispatched = 0
        self.enrolments = 0
        self.model_transfers = 0  # models streamed to agents over the link
        self.handshake_failures: Counter[str] = Counter()  # by error code
        self.dispatch_to_start = Histogram()
        self.submit_to_finish = Histogram()
        self.run_wall = Histogram()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _labelled(name: str, label: str, values: Mapping[str, Any]) -> list[str]:
    return [f'{name}{{{label}="{_label(str(k))}"}} {v}' for k, v in sorted(values.items())]


def render(metrics: Metrics, status: Mapping[str, Any]) -> str:
    out: list[str] = []
    devices = status["devices"]
    out += _family("fogmesh_devices", "gauge", "Devices by status.")
    out += _labelled("fogmesh_devices", "status", devices["by_status"])
    out += _family("fogmesh_ready_devices_by_power_mode", "gauge", "Ready devices by power mode.")
    modes = {m: 0 for m in ("performance", "balanced", "power_save", "critical")}
    modes.update(devices["ready_by_power_mode"])
    out += _labelled("fogmesh_ready_devices_by_power_mode", "mode", modes)
    out += _family("fogmesh_agents_connected", "gauge", "Agent sessions open now.")
    out.append(f"fogmesh_agents_connected {status.get('agents_connected', 0)}")
    out += _family("fogmesh_tasks", "gauge", "Tasks by state.")
    out += _labelled("fogmesh_tasks", "state", status["tasks"])
    out += _family("fogmesh_queue_depth", "gauge", "Pending tasks by priority.")
    queue = {p: 0 for p in ("low", "normal", "high", "critical")}
    queue.update(status["queue_by_priority"])
    out += _labelled("fogmesh_queue_depth", "priority", queue)
    sched = status["scheduler"]
    out += _family("fogmesh_placements_total", "counter", "Tasks placed on devices.")
    out.append(f"fogmesh_placements_total {sched.get('placements', 0)}")
    out += _family("fogmesh_preemptions_total", "counter", "Leases preempted.")
    out.append(f"fogmesh_preemptions_total {sched.get('preemptions', 0)}")
    out += _family("fogmesh_scheduling_rounds_total", "counter", "Scheduling rounds run.")
    out.append(f"fogmesh_scheduling_rounds_total {sched.get('rounds', 0)}")
    out += _family("fogmesh_dispatched_total", "counter", "Assign messages sent to agents.")
    out.append(f"fogmesh_dispatched_total {metrics.dispatched}")
    out += _family("fogmesh_results_total", "counter", "Attempt outcomes reported by agents.")
    out += _labelled("fogmesh_results_total", "status", metrics.results)
    out += _family("fogmesh_failures_total", "counter", "Attempts that did not complete.")
    failed = sum(n for s, n in metrics.results.items() if s != "completed")
    out.append(f"fogmesh_failures_total {failed + metrics.refusals}")
    out += _family("fogmesh_refusals_total", "counter", "Tasks refused by a device's policy.")
    out.append(f"fogmesh_refusals_total {metrics.refusals}")
    out += _family("fogmesh_stale_reports_total", "counter", "Reports fenced off (old attempt).")
    out.append(f"fogmesh_stale_reports_total {metrics.stale_reports}")
    out += _family(
        "fogmesh_reports_deferred_total",
        "counter",
        "Results and refusals the store could not take then; the agent sends them again.",
    )
    out.append(f"fogmesh_reports_deferred_total {metrics.reports_deferred}")
    out += _family("fogmesh_enrolments_total", "counter", "Devices enrolled.")
    out.append(f"fogmesh_enrolments_total {metrics.enrolments}")
    out += _family(
        "fogmesh_model_transfers_total", "counter", "Models streamed to agents over the link."
    )
    out.append(f"fogmesh_model_transfers_total {metrics.model_transfers}")
    out += _family("fogmesh_handshake_failures_total", "counter", "Refused agent sessions.")
    out += _labelled("fogmesh_handshake_failures_total", "code", metrics.handshake_failures)
    out += _family(
        "fogmesh_handshake_waits_total",
        "counter",
        "Agent handshake steps that waited for others or for registrations (connect storms).",
    )
    out.append(f"fogmesh_handshake_waits_total {status.get('handshakes_waited', 0)}")
    for name, hist, text in (
        ("fogmesh_dispatch_to_start_seconds", metrics.dispatch_to_start, "Placement to start."),
        ("fogmesh_submit_to_finish_seconds", metrics.submit_to_finish, "Submit to result."),
        ("fogmesh_run_seconds", metrics.run_wall, "Wall time of attempts on devices."),
    ):
        out += _family(name, "histogram", text)
        out.extend(hist.lines(name))
    return "\n".join(out) + "\n"
