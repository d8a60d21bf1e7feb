"""The twin's learner: small count models with Dirichlet back-off, updated by surprise.

Pure and numpy-only: functions take a model and records and return a new model and statistics;
no I/O, no clock, randomness only from the seed passed in. The concierge stores the model sealed.

Per source, one categorical model predicts what happens next from context:

* app usage — the next app from (previous app, hour), backing off to (weekday/weekend, hour),
  then the previous app alone, then overall frequency;
* location — the place (a ~1 km cell) from (weekday, hour) → hour → overall;
* purchases — the category from (weekday, hour) → hour → overall;
* calendar — busy/free for each hour from (weekday, hour) → hour → overall.

Each level smooths toward the one below (``p = (counts + β·p_below) / (n + β)``), so a rare
context falls back on broader evidence instead of guessing uniformly.

Surprise is ``−log₂ p(what happened)`` under the model *before* the cycle. Every new event is
counted once; then a prioritised replay (Schaul et al. 2016, "Prioritized Experience Replay")
draws as many extra samples again with probability ∝ (surprise + ε)^α and adds them with
importance weights (N·P(i))^−β / max, so the model moves most where it was most wrong without
the replay distorting the counts unboundedly.

Hours and weekdays are **local** to the owner's time zone (a ``tzinfo`` the caller passes in:
the concierge builds it from ``UserPreferences.timezone``), because a routine follows the wall
clock — the alarm rings at 07:00 local in winter and in summer. The UTC offset is looked up per
record, so a DST change moves the UTC hour of "07:00" and the features do not notice. Looking
offsets up in an already loaded ``tzinfo`` is computation, not I/O.

Which records are new is decided by the vault's ingestion sequence number (``Record.seq``), not
by time: a per-source watermark of the highest ``seq`` learnt. A week-old calendar imported after
today's data is therefore still learnt, and nothing is learnt twice. Records without ``seq``
(built in memory, not read from a vault) are taken as new; the caller hands each over once.

Conversations are not learnt here: they feed the mini-RAG only (docs/twin.md §6 says why).

``improvement_score`` is the top-1 accuracy gain on a held-out slice of the newest data (the
last quarter, by time): the model before the cycle versus the model after learning from the rest
of the new data. The held-out slice is folded in afterwards.
"""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from fogmesh.errors import IntegrityError, TwinError
from fogmesh.twin.prefs import DataSource, Record

__all__ = [
    "MAX_MODEL_BYTES",
    "MIN_MODEL_BYTES",
    "CategoricalModel",
    "LearningCycle",
    "SourceStats",
    "TwinModel",
    "check_model_size",
    "fresh_records",
    "learn",
    "markov_baseline_accuracy",
    "most_frequent_baseline_accuracy",
    "utc_offsets",
]

MIN_MODEL_BYTES: Final = 1_000_000
MAX_MODEL_BYTES: Final = 10_000_000
MAX_APPS: Final = 128
MAX_PLACES: Final = 64
MAX_CATEGORIES: Final = 32
OTHER: Final = "(other)"
SESSION_GAP_S: Final = 1800.0  # an app opened after this long has no "previous app"
_BETA: Final = 2.0
_DECAY: Final = 0.98
_ALPHA: Final = 0.6
_IS_BETA: Final = 0.4
_REPLAY_RATE: Final = 0.5
_EPS: Final = 1e-3
_HOLDOUT: Final = 0.25

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class CategoricalModel:
    """Counts per context level over a bounded vocabulary; the last level is the most specific."""

    def __init__(self, size: int, contexts: Sequence[int], vocab: Sequence[str] = ()) -> None:
        self.size = size
        self.levels: list[FloatArray] = [np.zeros((n, size)) for n in contexts]
        self.vocab: list[str] = list(vocab)

    def index(self, label: str, *, grow: bool = True) -> int:
        """The label's index. New labels are added while there is room; once full, they all
        share a last slot named ``(other)``. Without ``grow`` an unknown label is -1."""
        try:
            return self.vocab.index(label)
        except ValueError:
            if not grow:
                return -1
            if len(self.vocab) < self.size - 1:
                self.vocab.append(label)
                return len(self.vocab) - 1
            if len(self.vocab) == self.size - 1:
                self.vocab.append(OTHER)
            return self.size - 1

    def proba(self, ctx: IntArray) -> FloatArray:
        """P(label | context) for each row of ``ctx`` (one column per level)."""
        n = ctx.shape[0]
        active = max(1, len(self.vocab))
        p = np.zeros((n, self.size))
        p[:, :active] = 1.0 / active
        for k, table in enumerate(self.levels):
            rows = table[ctx[:, k]]
            p = (rows + _BETA * p) / (rows.sum(axis=1, keepdims=True) + _BETA)
        return p

    def add(self, ctx: IntArray, y: IntArray, weights: FloatArray) -> None:
        for k, table in enumerate(self.levels):
            np.add.at(table, (ctx[:, k], y), weights)

    def decay(self, factor: float) -> None:
        for table in self.levels:
            table *= factor

    def copy(self) -> CategoricalModel:
        clone = CategoricalModel(self.size, [t.shape[0] for t in self.levels], self.vocab)
        clone.levels = [t.copy() for t in self.levels]
        return clone


@dataclass(slots=True)
class SourceStats:
    """One source's part of a cycle. ``records`` counts what the owner gave (app openings,
    calendar events); ``samples`` counts what the model learnt from them, which differs for
    the calendar (each event becomes one sample per busy slot, and free slots around it)."""

    samples: int
    holdout: int
    accuracy_before: float
    accuracy_after: float
    mean_surprise_bits: float
    records: int = 0

    @property
    def improvement(self) -> float:
        return self.accuracy_after - self.accuracy_before

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "samples": self.samples,
            "holdout": self.holdout,
            "accuracy_before": round(self.accuracy_before, 4),
            "accuracy_after": round(self.accuracy_after, 4),
            "improvement": round(self.improvement, 4),
            "mean_surprise_bits": round(self.mean_surprise_bits, 4),
        }


@dataclass(slots=True)
class LearningCycle:
    """What one learning cycle did. ``improvement_score`` is the held-out accuracy gain (see the
    module docstring); a deferred or empty cycle has 0.0 and says why in ``reason``.

    ``cycle`` is the number of the cycle that ran; when none ran (deferred, or nothing new to
    learn: ``learned`` is False) it is the number of cycles so far."""

    cycle: int
    improvement_score: float
    reason: str
    deferred: bool = False
    samples: int = 0
    accuracy_before: float = 0.0
    accuracy_after: float = 0.0
    mean_surprise_bits: float = 0.0
    per_source: dict[str, SourceStats] = field(default_factory=dict)
    model_bytes: int = 0
    duration_s: float = 0.0
    power_mode: str | None = None

    @property
    def learned(self) -> bool:
        """Whether this call learnt anything (a cycle ran)."""
        return not self.deferred and bool(self.per_source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cycle": self.cycle,
            "learned": self.learned,
            "improvement_score": round(self.improvement_score, 4),
            "reason": self.reason,
            "deferred": self.deferred,
            "samples": self.samples,
            "accuracy_before": round(self.accuracy_before, 4),
            "accuracy_after": round(self.accuracy_after, 4),
            "mean_surprise_bits": round(self.mean_surprise_bits, 4),
            "per_source": {k: v.to_dict() for k, v in self.per_source.items()},
            "model_bytes": self.model_bytes,
            "duration_s": round(self.duration_s, 4),
            "power_mode": self.power_mode,
        }


def _offset(ts: float, tz: tzinfo) -> int:
    delta = datetime.fromtimestamp(ts, tz).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def utc_offsets(ts: FloatArray, tz: tzinfo | None) -> IntArray:
    """Each timestamp's UTC offset in ``tz`` (seconds; zeros for UTC or ``None``).

    Offsets are looked up once per distinct UTC hour — at its first and last second — not per
    record; only an hour whose two ends disagree (it contains a DST change) is looked up record
    by record. Zones change offset at most once an hour, so this is exact."""
    if tz is None or tz is UTC or len(ts) == 0:
        return np.zeros(len(ts), dtype=np.int64)
    if len(ts) == 1:  # a prediction: one lookup, none of the bucketing
        return np.array([_offset(float(ts[0]), tz)], dtype=np.int64)
    hours = np.floor(ts / 3600.0).astype(np.int64)
    unique, inverse = np.unique(hours, return_inverse=True)
    starts = np.array([_offset(float(h) * 3600.0, tz) for h in unique], dtype=np.int64)
    ends = np.array([_offset(float(h) * 3600.0 + 3599.0, tz) for h in unique], dtype=np.int64)
    offsets = starts[inverse]
    changing = np.flatnonzero(starts[inverse] != ends[inverse])
    for i in changing:
        offsets[i] = _offset(float(ts[i]), tz)
    return offsets


def _hour_weekday(ts: FloatArray, tz: tzinfo | None = None) -> tuple[IntArray, IntArray]:
    """Local hour (0–23) and weekday (Monday = 0) of each timestamp in ``tz``."""
    if len(ts) == 1:  # a prediction: plain datetime beats numpy's per-call overhead (~50 µs)
        moment = datetime.fromtimestamp(float(ts[0]), tz or UTC)
        return np.array([moment.hour], dtype=np.int64), np.array([moment.weekday()], dtype=np.int64)
    seconds = np.floor(ts).astype(np.int64) + utc_offsets(ts, tz)
    hour = (seconds // 3600) % 24
    weekday = ((seconds // 86_400) + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    return hour, weekday


class TwinModel:
    """All per-source models plus what the learner remembers between cycles.

    ``tz`` is the zone whose local hours and weekdays the features use (``None``: UTC). It is
    not stored with the model; the owner's preferences say it each time the twin opens.
    ``seen`` maps a source to the highest ingestion sequence number learnt; ``legacy_marks``
    holds the timestamp watermarks of a version-1 model until its first cycle replaces them."""

    def __init__(self, tz: tzinfo | None = None) -> None:
        self.tz = tz
        self.apps = CategoricalModel(MAX_APPS, [1, MAX_APPS + 1, 48, (MAX_APPS + 1) * 24])
        self.places = CategoricalModel(MAX_PLACES, [1, 24, 168])
        self.purchases = CategoricalModel(MAX_CATEGORIES, [1, 24, 168])
        self.busy = CategoricalModel(2, [1, 24, 168], ["free", "busy"])
        self.seen: dict[str, int] = {}
        self.legacy_marks: dict[str, float] = {}
        self.last_app: tuple[str, float] | None = None
        self.cycles = 0

    def models(self) -> dict[DataSource, CategoricalModel]:
        return {
            DataSource.APP_USAGE: self.apps,
            DataSource.LOCATION: self.places,
            DataSource.PURCHASES: self.purchases,
            DataSource.CALENDAR: self.busy,
        }

    def copy(self) -> TwinModel:
        clone = TwinModel(self.tz)
        clone.apps, clone.places = self.apps.copy(), self.places.copy()
        clone.purchases, clone.busy = self.purchases.copy(), self.busy.copy()
        clone.seen = dict(self.seen)
        clone.legacy_marks = dict(self.legacy_marks)
        clone.last_app = self.last_app
        clone.cycles = self.cycles
        return clone

    # -- features ---------------------------------------------------------------------------

    def app_features(
        self, records: Sequence[Record], *, grow: bool
    ) -> tuple[IntArray, IntArray, FloatArray]:
        ts = np.array([r.timestamp for r in records], dtype=np.float64)
        y = np.array([self.apps.index(str(r.data["app"]), grow=grow) for r in records])
        prev = np.full(len(records), MAX_APPS, dtype=np.int64)
        last = self.last_app
        last_idx = self.apps.index(last[0], grow=False) if last else -1
        last_t = last[1] if last else -np.inf
        for i in range(len(records)):
            # 0 ≤ gap: a record imported late (older than the last app seen) had no "previous".
            if last_idx >= 0 and 0.0 <= ts[i] - last_t <= SESSION_GAP_S:
                prev[i] = last_idx
            last_idx, last_t = int(y[i]), ts[i]
        return self._app_ctx(ts, prev), y.astype(np.int64), ts

    def _app_ctx(self, ts: FloatArray, prev: IntArray) -> IntArray:
        hour, weekday = _hour_weekday(ts, self.tz)
        weekend = (weekday >= 5).astype(np.int64)
        zero = np.zeros_like(hour)
        return np.stack([zero, prev, weekend * 24 + hour, prev * 24 + hour], axis=1)

    def _time_ctx(self, ts: FloatArray) -> IntArray:
        hour, weekday = _hour_weekday(ts, self.tz)
        return np.stack([np.zeros_like(hour), hour, weekday * 24 + hour], axis=1)

    def features(
        self, source: DataSource, records: Sequence[Record], *, grow: bool = True
    ) -> tuple[IntArray, IntArray, FloatArray]:
        if source is DataSource.APP_USAGE:
            return self.app_features(records, grow=grow)
        if source is DataSource.CALENDAR:
            return self._busy_features(records)
        key = "place" if source is DataSource.LOCATION else "category"
        model = self.places if source is DataSource.LOCATION else self.purchases
        ts = np.array([r.timestamp for r in records], dtype=np.float64)
        y = np.array([model.index(str(r.data[key]), grow=grow) for r in records], dtype=np.int64)
        return self._time_ctx(ts), y, ts

    def _busy_features(self, records: Sequence[Record]) -> tuple[IntArray, IntArray, FloatArray]:
        # Each hour between the first event's start and the last one's end is one sample.
        if not records:
            empty = np.zeros(0, dtype=np.int64)
            return np.zeros((0, 3), dtype=np.int64), empty, np.zeros(0)
        starts = np.array([r.timestamp for r in records])
        ends = np.array([float(r.data.get("end", r.timestamp + 3600)) for r in records])
        first = np.floor(starts.min() / 3600) * 3600
        hours = np.arange(first, ends.max(), 3600.0)
        busy = np.zeros(len(hours), dtype=np.int64)
        for s, e in zip(starts, ends, strict=True):
            busy[(hours + 3600 > s) & (hours < e)] = 1
        return self._time_ctx(hours), busy, hours

    # -- prediction -------------------------------------------------------------------------

    def predict_next_app(
        self, now: float, recent: Sequence[str] = (), *, since_last_s: float = 0.0, top: int = 3
    ) -> list[tuple[str, float]]:
        """The ``top`` likeliest next apps at ``now`` given the most recent app (if any)."""
        prev = MAX_APPS
        if recent and since_last_s <= SESSION_GAP_S:
            found = self.apps.index(recent[-1], grow=False)
            prev = found if found >= 0 else MAX_APPS
        ctx = self._app_ctx(np.array([now]), np.array([prev], dtype=np.int64))
        return _top(self.apps, self.apps.proba(ctx)[0], top)

    def predict(self, source: DataSource, now: float, *, top: int = 3) -> list[tuple[str, float]]:
        model = self.models()[source]
        return _top(model, model.proba(self._time_ctx(np.array([now])))[0], top)

    # -- storage ----------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        arrays: dict[str, Any] = {}
        meta: dict[str, Any] = {
            "version": 2,
            "seen": self.seen,
            "legacy_marks": self.legacy_marks,
            "last_app": list(self.last_app) if self.last_app else None,
            "cycles": self.cycles,
            "vocab": {},
        }
        for source, model in self.models().items():
            meta["vocab"][source.value] = model.vocab
            for k, table in enumerate(model.levels):
                arrays[f"{source.value}_{k}"] = table
        buffer = io.BytesIO()
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
        check_model_size(len(data))
        return data

    @classmethod
    def from_bytes(cls, data: bytes, tz: tzinfo | None = None) -> TwinModel:
        model = cls(tz)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as stored:
                meta = json.loads(stored["meta"].tobytes())
                for source, sub in model.models().items():
                    sub.vocab = list(meta["vocab"][source.value])
                    for k in range(len(sub.levels)):
                        table = stored[f"{source.value}_{k}"]
                        if table.shape != sub.levels[k].shape:
                            raise ValueError("shape")
                        sub.levels[k] = np.array(table, dtype=np.float64)
        except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
            raise IntegrityError("the stored twin model is unreadable") from exc
        try:
            if int(meta.get("version", 1)) == 1:
                # Version 1 kept timestamp watermarks; they decide once more, then seq takes over.
                model.legacy_marks = {str(k): float(v) for k, v in meta["watermarks"].items()}
            else:
                model.seen = {str(k): int(v) for k, v in meta["seen"].items()}
                model.legacy_marks = {str(k): float(v) for k, v in meta["legacy_marks"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IntegrityError("the stored twin model is unreadable") from exc
        model.last_app = (
            (str(meta["last_app"][0]), float(meta["last_app"][1])) if meta["last_app"] else None
        )
        model.cycles = int(meta["cycles"])
        return model


def check_model_size(size: int) -> None:
    if not MIN_MODEL_BYTES <= size <= MAX_MODEL_BYTES:
        raise TwinError(f"twin model is {size} bytes, outside the 1–10 MB the device budgets")


def _top(model: CategoricalModel, p: FloatArray, top: int) -> list[tuple[str, float]]:
    active = len(model.vocab)
    if active == 0:
        return []
    order = np.argsort(-p[:active])[:top]
    return [(model.vocab[i], float(p[i])) for i in order]


def _accuracy(model: CategoricalModel, ctx: IntArray, y: IntArray) -> float:
    if len(y) == 0 or not model.vocab:
        return 0.0
    # A label the model has never seen (index past its vocabulary) cannot be a correct guess.
    hits = (np.argmax(model.proba(ctx), axis=1) == y) & (y < len(model.vocab))
    return float(np.mean(hits))


def _update(model: CategoricalModel, ctx: IntArray, y: IntArray, rng: np.random.Generator) -> float:
    """Count the events once, then replay them by surprise; returns the mean surprise (bits)."""
    if len(y) == 0:
        return 0.0
    p = model.proba(ctx)[np.arange(len(y)), y]
    surprise = -np.log2(np.clip(p, 1e-12, 1.0))
    model.add(ctx, y, np.ones(len(y)))
    priority = (surprise + _EPS) ** _ALPHA
    prob = priority / priority.sum()
    draws = max(1, int(len(y) * _REPLAY_RATE))
    chosen = rng.choice(len(y), size=draws, p=prob)
    weights = (len(y) * prob[chosen]) ** (-_IS_BETA)
    model.add(ctx[chosen], y[chosen], weights / weights.max())
    return float(surprise.mean())


def fresh_records(model: TwinModel, source: DataSource, records: Sequence[Record]) -> list[Record]:
    """The records of ``source`` the model has not learnt: ``seq`` above its watermark (or no
    ``seq`` at all), oldest first. A version-1 model's timestamp watermark still applies to
    records the model has no ``seq`` watermark for yet."""
    mark = model.seen.get(source.value, -1)
    legacy = model.legacy_marks.get(source.value) if source.value not in model.seen else None
    fresh = [
        r
        for r in records
        if (r.seq is None or r.seq > mark) and (legacy is None or r.timestamp > legacy)
    ]
    fresh.sort(key=lambda r: r.timestamp)
    return fresh


def learn(
    model: TwinModel, records: Mapping[DataSource, Sequence[Record]], *, seed: int = 0
) -> tuple[TwinModel, LearningCycle]:
    """Learn from the records the model has not seen (``fresh_records``); returns (new model,
    cycle). Every record with a ``seq`` is learnt exactly once, however late it arrives."""
    rng = np.random.default_rng(seed)
    after = model.copy()
    after.cycles += 1
    stats: dict[str, SourceStats] = {}
    for source, sub in after.models().items():
        given = records.get(source, ())
        numbered = [r.seq for r in given if r.seq is not None]
        if numbered:
            # Everything handed over with a number is now accounted for, including records a
            # version-1 timestamp watermark says were learnt before.
            after.seen[source.value] = max(model.seen.get(source.value, -1), max(numbered))
            after.legacy_marks.pop(source.value, None)
        fresh = fresh_records(model, source, given)
        if not fresh:
            continue
        before = model.models()[source]
        ctx, y, _ts = after.features(source, fresh)
        newest = fresh[-1]
        if source is DataSource.APP_USAGE and (
            after.last_app is None or newest.timestamp >= after.last_app[1]
        ):
            # A late import of older usage does not make an old app the "last" one.
            after.last_app = (str(newest.data["app"]), newest.timestamp)
        cut = int(len(y) * (1 - _HOLDOUT)) if len(y) >= 4 else len(y)
        acc_before = _accuracy(before, ctx[cut:], y[cut:])
        sub.decay(_DECAY)
        surprise = _update(sub, ctx[:cut], y[:cut], rng)
        acc_after = _accuracy(sub, ctx[cut:], y[cut:])
        _update(sub, ctx[cut:], y[cut:], rng)
        stats[source.value] = SourceStats(
            len(y), len(y) - cut, acc_before, acc_after, surprise, records=len(fresh)
        )
    cycle = LearningCycle(cycle=after.cycles, improvement_score=0.0, reason="no new data")
    held = sum(s.holdout for s in stats.values())
    if held:
        cycle.samples = sum(s.samples for s in stats.values())
        cycle.accuracy_before = sum(s.accuracy_before * s.holdout for s in stats.values()) / held
        cycle.accuracy_after = sum(s.accuracy_after * s.holdout for s in stats.values()) / held
        cycle.improvement_score = cycle.accuracy_after - cycle.accuracy_before
        weights = sum(s.samples for s in stats.values())
        cycle.mean_surprise_bits = (
            sum(s.mean_surprise_bits * s.samples for s in stats.values()) / weights
        )
        cycle.reason = "learned from " + ", ".join(_described(k, s) for k, s in stats.items())
    cycle.per_source = stats
    return after, cycle


_UNITS: Final = {"app_usage": "app openings", "calendar": "calendar events"}


def _described(source: str, stats: SourceStats) -> str:
    """``14 calendar events (314 hourly slots)``: records as the owner counts them; samples
    only where they differ (the calendar learns busy or free per hour of its span)."""
    unit = _UNITS.get(source, f"{source} records")
    text = f"{stats.records} {unit}"
    if stats.samples != stats.records:
        what = "hourly slots" if source == "calendar" else "samples"
        text += f" ({stats.samples} {what})"
    return text


# -- baselines (for tests and benchmarks) ---------------------------------------------------


def most_frequent_baseline_accuracy(train: Sequence[str], test: Sequence[str]) -> float:
    """Top-1 accuracy of always predicting the most frequent app in ``train``."""
    if not test:
        return 0.0
    labels, counts = np.unique(np.array(train), return_counts=True)
    best = labels[np.argmax(counts)]
    return float(np.mean(np.array(test) == best))


def markov_baseline_accuracy(train: Sequence[str], test: Sequence[str]) -> float:
    """Top-1 accuracy of a first-order Markov chain (next app given the previous one only)."""
    table: dict[str, dict[str, int]] = {}
    for a, b in itertools.pairwise(train):
        table.setdefault(a, {}).setdefault(b, 0)
        table[a][b] += 1
    overall: dict[str, int] = {}
    for a in train:
        overall[a] = overall.get(a, 0) + 1
    fallback = max(overall, key=lambda k: overall[k]) if overall else ""
    hits = 0
    for prev, actual in itertools.pairwise(test):
        row = table.get(prev)
        guess = max(row, key=lambda k: row[k]) if row else fallback
        hits += guess == actual
    return hits / max(1, len(test) - 1)
