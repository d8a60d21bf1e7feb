"""Learner: beats the baselines on a synthetic persona, improves across cycles, scores honestly."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fogmesh.errors import IntegrityError, TwinError
from fogmesh.twin import DataSource, Persona, Record, TwinModel, learn
from fogmesh.twin.learner import (
    MAX_MODEL_BYTES,
    MIN_MODEL_BYTES,
    CategoricalModel,
    _update,
    check_model_size,
    markov_baseline_accuracy,
    most_frequent_baseline_accuracy,
)

DAY = 86_400.0


def _by_day(persona: Persona, first: int, last: int) -> dict[DataSource, list[Record]]:
    """Days ``first``..``last`` of the persona, numbered as a vault would have (``seq`` in
    time order across the whole persona), so a repeat hands over the same numbers."""
    t0 = persona.all()[0].timestamp // DAY * DAY
    lo, hi = t0 + first * DAY, t0 + last * DAY
    numbered = [replace(r, seq=i + 1) for i, r in enumerate(persona.all())]
    out: dict[DataSource, list[Record]] = {s: [] for s in persona.records}
    for r in numbered:
        if lo <= r.timestamp < hi:
            out[r.source].append(r)
    return out


def _top1(model: TwinModel, records: list[Record]) -> float:
    ctx, y, _ = model.copy().app_features(records, grow=False)
    return float(np.mean(model.apps.proba(ctx).argmax(axis=1) == y))


def test_beats_baselines_and_improves_across_cycles(persona: Persona) -> None:
    test = _by_day(persona, 11, 14)[DataSource.APP_USAGE]  # Fri, Sat, Sun: both kinds of day
    model = TwinModel()
    accuracy = []
    for day in range(11):
        model, cycle = learn(model, _by_day(persona, day, day + 1), seed=day)
        assert cycle.samples > 0
        accuracy.append(_top1(model, test))
    train = [r.data["app"] for r in _by_day(persona, 0, 11)[DataSource.APP_USAGE]]
    held = [r.data["app"] for r in test]
    most_frequent = most_frequent_baseline_accuracy(train, held)
    markov = markov_baseline_accuracy(train, held)
    assert accuracy[-1] > markov + 0.03 > most_frequent
    # more days of routine (weekdays and a weekend) → better predictions of the held-out days
    assert accuracy[0] < accuracy[4] < accuracy[-1]


def test_improvement_score_is_held_out_gain_not_accuracy(persona: Persona) -> None:
    model, first = learn(TwinModel(), _by_day(persona, 0, 3), seed=1)
    apps = first.per_source["app_usage"]
    assert apps.accuracy_before == 0.0  # an empty model knows no app
    assert apps.improvement == pytest.approx(apps.accuracy_after - apps.accuracy_before)
    assert apps.improvement > 0.3
    # days the model has already learnt from add nothing new to learn
    again, repeat = learn(model, _by_day(persona, 0, 3), seed=2)
    assert repeat.improvement_score == 0.0 and repeat.reason == "no new data"
    assert again.seen == model.seen
    # a later cycle's score compares against the model before *that* cycle
    _, later = learn(model, _by_day(persona, 7, 8), seed=3)
    assert later.per_source["app_usage"].accuracy_before > 0.2
    assert later.improvement_score < first.improvement_score


def test_learn_does_not_touch_the_model_it_was_given(persona: Persona) -> None:
    model = TwinModel()
    learn(model, _by_day(persona, 0, 1))
    assert model.cycles == 0 and not model.apps.vocab and float(model.apps.levels[0].sum()) == 0


def test_surprising_events_are_replayed_more() -> None:
    model = CategoricalModel(4, [1], ["a", "b", "c", "d"])
    model.add(np.zeros((1, 1), dtype=np.int64), np.array([0]), np.array([50.0]))
    ctx = np.zeros((200, 1), dtype=np.int64)
    y = np.array([0] * 100 + [3] * 100)  # "d" is surprising, "a" is expected
    _update(model, ctx, y, np.random.default_rng(0))
    replayed = model.levels[0][0] - np.array([150.0, 0, 0, 100.0])
    assert replayed[3] > 2 * replayed[0] > 0


def test_model_round_trips_and_stays_within_the_size_budget(persona: Persona) -> None:
    model, _ = learn(TwinModel(), _by_day(persona, 0, 3))
    blob = model.to_bytes()
    assert MIN_MODEL_BYTES <= len(blob) <= MAX_MODEL_BYTES
    back = TwinModel.from_bytes(blob)
    assert back.seen == model.seen and back.cycles == model.cycles
    now = persona.all()[-1].timestamp
    assert back.predict_next_app(now, ["email"]) == model.predict_next_app(now, ["email"])
    with pytest.raises(IntegrityError):
        TwinModel.from_bytes(blob[:1000])
    with pytest.raises(TwinError, match="outside the 1–10 MB"):
        check_model_size(MAX_MODEL_BYTES + 1)


def test_per_source_predictions_follow_the_routine(persona: Persona) -> None:
    model, _ = learn(TwinModel(), _by_day(persona, 0, 14))
    monday_10 = persona.all()[0].timestamp // DAY * DAY + 7 * DAY + 10.25 * 3600
    assert model.predict(DataSource.LOCATION, monday_10)[0][0] == "52.34,4.87"  # the office
    assert model.predict(DataSource.CALENDAR, monday_10 - 0.75 * 3600)[0][0] == "busy"
    assert model.predict(DataSource.PURCHASES, monday_10 + 2.25 * 3600)[0][0] == "food"
    top = model.predict_next_app(monday_10, ["email"], since_last_s=60)
    assert top[0][0] == "slack" and sum(p for _, p in top) <= 1.0


def test_a_full_vocabulary_sends_new_labels_to_other() -> None:
    model = CategoricalModel(4, [1])
    assert [model.index(x) for x in ("a", "b", "c", "d", "e", "a")] == [0, 1, 2, 3, 3, 0]
    assert model.vocab == ["a", "b", "c", "(other)"]
    assert model.index("zzz", grow=False) == -1
