"""Variant choice is a pure rule: device class and power mode pick, memory decides what fits."""

from __future__ import annotations

import pytest

from fogmesh.devices import DeviceProfile, preset
from fogmesh.edge.variants import RUNTIME_BASE_MB, Variant, choose_variant, memory_needed_mb
from fogmesh.mobile import ResourcePolicy, evaluate

MIB = 1024 * 1024
BOTH = {Variant.FP32: 4 * MIB, Variant.INT8: 1 * MIB}


def decide(profile: DeviceProfile, sizes: dict[Variant, int]) -> Variant | None:
    return choose_variant(sizes, profile, evaluate(profile, ResourcePolicy())).variant


def test_memory_needed_is_twice_the_file_plus_the_runtime() -> None:
    # 4 MiB × 2 = 8 MB, + 32 MB runtime = 40 MB
    assert memory_needed_mb(4 * MIB) == RUNTIME_BASE_MB + 8 == 40
    # 1 byte rounds up to a whole MB
    assert memory_needed_mb(1) == RUNTIME_BASE_MB + 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("desktop", Variant.FP32),  # mains, performance
        ("desktop-gpu", Variant.FP32),
        ("laptop-on-cellular", Variant.FP32),  # battery 55 %, not saving
        ("phone-charging", Variant.INT8),  # phones prefer int8 whatever the mode
        ("tablet-charging", Variant.INT8),
        ("raspberry-pi", Variant.INT8),
        ("phone-critical-battery", Variant.INT8),
    ],
)
def test_class_and_mode_pick_the_variant(name: str, expected: Variant) -> None:
    assert decide(preset(name), BOTH) is expected


def test_power_save_laptop_prefers_int8() -> None:
    # battery 12 % on a laptop: the policy's power_save (or worse) → int8
    laptop = preset("laptop-on-battery").replace(battery_percent=12.0)
    opt = evaluate(laptop, ResourcePolicy())
    assert opt.power_mode.value in ("power_save", "critical")
    choice = choose_variant(BOTH, laptop, opt)
    assert choice.variant is Variant.INT8
    assert any("prefers int8" in r for r in choice.reasons)


def test_falls_back_to_the_other_variant_when_the_preferred_one_is_missing() -> None:
    choice = choose_variant(
        {Variant.FP32: MIB},
        preset("phone-charging"),
        evaluate(preset("phone-charging"), ResourcePolicy()),
    )
    assert choice.variant is Variant.FP32
    assert "no int8 variant registered" in choice.reasons


def test_memory_budget_excludes_variants_that_do_not_fit() -> None:
    # 4000 MB available (no memory pressure, no policy cap on a performance desktop):
    # fp32 of 2500 MiB needs 32 + 5000 = 5032 MB; int8 of 625 MiB needs 32 + 1250 = 1282 MB
    desk = preset("desktop").replace(ram_available_mb=4000)
    opt = evaluate(desk, ResourcePolicy())
    assert opt.memory_limit_mb is None
    sizes = {Variant.FP32: 2500 * MIB, Variant.INT8: 625 * MIB}
    choice = choose_variant(sizes, desk, opt)
    assert choice.variant is Variant.INT8
    assert "fp32 needs 5032 MB > budget 4000 MB" in choice.reasons
    assert choice.budget_mb == 4000


def test_nothing_fits_is_no_variant_with_reasons() -> None:
    # 40 MB available is critical memory pressure: the policy caps a task at 40 × 0.5 = 20 MB,
    # the smaller of the two limits, so the budget is 20 MB
    desk = preset("desktop").replace(ram_available_mb=40)
    opt = evaluate(desk, ResourcePolicy())
    assert opt.memory_limit_mb == 20
    choice = choose_variant({Variant.FP32: 60 * MIB}, desk, opt)
    assert choice.variant is None
    assert "no int8 variant registered" in choice.text
    assert "fp32 needs 152 MB > budget 20 MB" in choice.text


def test_unknown_memory_does_not_exclude() -> None:
    desk = preset("desktop").replace(ram_available_mb=None)
    choice = choose_variant({Variant.FP32: 600 * MIB}, desk, evaluate(desk, ResourcePolicy()))
    assert choice.variant is Variant.FP32
    assert choice.budget_mb is None
