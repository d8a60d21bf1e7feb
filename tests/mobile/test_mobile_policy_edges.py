"""Table-driven: every threshold edge of the default policy, with the rule written per case.

Defaults: battery critical ≤ 10 / low ≤ 20 / conservative ≤ 40 %; thermal warm ≥ 45 / hot ≥ 55 /
critical ≥ 65 °C. CPU caps: conservative 60, low 35, critical battery 20, warm 60, hot 30,
critical thermal 15, low power mode 35. Tasks by mode: 8 / 4 / 1 / 0 (capped by cores: 8 on the
test phone); memory per task by mode: none / none / 512 / 256 MB.
"""

from __future__ import annotations

import json
import math

import pytest
from mobile_factories import desktop, laptop, phone, power_codes

from fogmesh.devices.model import DeviceCapabilities, DeviceProfile, PlatformThermal
from fogmesh.mobile import PowerMode, ResourcePolicy, evaluate

P = ResourcePolicy()
PERF, BAL, SAVE, CRIT = (
    PowerMode.PERFORMANCE,
    PowerMode.BALANCED,
    PowerMode.POWER_SAVE,
    PowerMode.CRITICAL,
)

# (profile, mode, cpu %, memory MB per task, max tasks, power reason codes)
CASES = [
    # ── battery, not charging (35 °C, 2 GB free: no other pressure) ──
    pytest.param(phone(battery_percent=40.1), PERF, 100, None, 8, (), id="bat-40.1"),
    # 40 ≤ conservative 40 → balanced; CPU min(100, 60) = 60; balanced → 4 tasks
    pytest.param(
        phone(battery_percent=40.0),
        BAL,
        60,
        None,
        4,
        ("battery_conservative", "mode_balanced"),
        id="bat-40",
    ),
    pytest.param(
        phone(battery_percent=39.9),
        BAL,
        60,
        None,
        4,
        ("battery_conservative", "mode_balanced"),
        id="bat-39.9",
    ),
    # 20.1 > low 20 → still conservative
    pytest.param(
        phone(battery_percent=20.1),
        BAL,
        60,
        None,
        4,
        ("battery_conservative", "mode_balanced"),
        id="bat-20.1",
    ),
    # 20 ≤ low 20 → power_save; CPU min(100, 35) = 35; 1 task, 512 MB
    pytest.param(
        phone(battery_percent=20.0),
        SAVE,
        35,
        512,
        1,
        ("battery_low", "mode_power_save"),
        id="bat-20",
    ),
    pytest.param(
        phone(battery_percent=19.9),
        SAVE,
        35,
        512,
        1,
        ("battery_low", "mode_power_save"),
        id="bat-19.9",
    ),
    pytest.param(
        phone(battery_percent=10.1),
        SAVE,
        35,
        512,
        1,
        ("battery_low", "mode_power_save"),
        id="bat-10.1",
    ),
    # 10 ≤ critical 10, not charging → critical; CPU 20; 0 tasks; 256 MB
    pytest.param(
        phone(battery_percent=10.0),
        CRIT,
        20,
        256,
        0,
        ("battery_critical", "mode_critical"),
        id="bat-10",
    ),
    pytest.param(
        phone(battery_percent=9.9),
        CRIT,
        20,
        256,
        0,
        ("battery_critical", "mode_critical"),
        id="bat-9.9",
    ),
    # 0 % is a real (empty) battery, not "no battery"
    pytest.param(
        phone(battery_percent=0.0),
        CRIT,
        20,
        256,
        0,
        ("battery_critical", "mode_critical"),
        id="bat-0",
    ),
    # ── charging relaxes the battery band one step ──
    # 9.9 ≤ 10 but charging → treated as low: power_save, CPU 35 (not critical)
    pytest.param(
        phone(battery_percent=9.9, charging=True),
        SAVE,
        35,
        512,
        1,
        ("battery_critical_charging", "mode_power_save"),
        id="chg-9.9",
    ),
    pytest.param(
        phone(battery_percent=10.0, charging=True),
        SAVE,
        35,
        512,
        1,
        ("battery_critical_charging", "mode_power_save"),
        id="chg-10",
    ),
    # 10.1 is in the low band; charging → treated as conservative: balanced, CPU 60
    pytest.param(
        phone(battery_percent=10.1, charging=True),
        BAL,
        60,
        None,
        4,
        ("battery_low_charging", "mode_balanced"),
        id="chg-10.1",
    ),
    pytest.param(
        phone(battery_percent=20.0, charging=True),
        BAL,
        60,
        None,
        4,
        ("battery_low_charging", "mode_balanced"),
        id="chg-20",
    ),
    # 20.1 conservative band; charging → treated as normal: no limit, only explained
    pytest.param(
        phone(battery_percent=20.1, charging=True),
        PERF,
        100,
        None,
        8,
        ("battery_conservative_charging",),
        id="chg-20.1",
    ),
    pytest.param(phone(battery_percent=40.1, charging=True), PERF, 100, None, 8, (), id="chg-40.1"),
    # charging unknown (None) is treated as not charging: the cautious reading
    pytest.param(
        phone(battery_percent=9.0, charging=None),
        CRIT,
        20,
        256,
        0,
        ("battery_critical", "mode_critical"),
        id="chg-unknown",
    ),
    # ── temperature (battery 80 %) ──
    pytest.param(phone(cpu_temp_c=44.9), PERF, 100, None, 8, (), id="temp-44.9"),
    # 45 ≥ warm 45 → balanced, CPU 60
    pytest.param(
        phone(cpu_temp_c=45.0), BAL, 60, None, 4, ("thermal_warm", "mode_balanced"), id="temp-45"
    ),
    pytest.param(
        phone(cpu_temp_c=54.9), BAL, 60, None, 4, ("thermal_warm", "mode_balanced"), id="temp-54.9"
    ),
    # 55 ≥ hot 55 → power_save, CPU 30
    pytest.param(
        phone(cpu_temp_c=55.0),
        SAVE,
        30,
        512,
        1,
        ("thermal_hot", "mode_power_save"),
        id="temp-55",
    ),
    pytest.param(
        phone(cpu_temp_c=64.9),
        SAVE,
        30,
        512,
        1,
        ("thermal_hot", "mode_power_save"),
        id="temp-64.9",
    ),
    # 65 ≥ critical 65 → critical, CPU 15
    pytest.param(
        phone(cpu_temp_c=65.0),
        CRIT,
        15,
        256,
        0,
        ("thermal_critical", "mode_critical"),
        id="temp-65",
    ),
    # ── strictest wins (min, never assignment) ──
    # low battery 35 vs hot 30 → min = 30
    pytest.param(
        phone(battery_percent=15.0, cpu_temp_c=56.0),
        SAVE,
        30,
        512,
        1,
        ("battery_low", "thermal_hot", "mode_power_save"),
        id="low+hot",
    ),
    # critical battery 20 vs hot 30 → 20: a later hot rule must not raise the cap
    pytest.param(
        phone(battery_percent=8.0, cpu_temp_c=56.0),
        CRIT,
        20,
        256,
        0,
        ("battery_critical", "thermal_hot", "mode_critical"),
        id="crit-battery+hot",
    ),
    # critical battery 20 vs critical thermal 15 → 15
    pytest.param(
        phone(battery_percent=8.0, cpu_temp_c=70.0),
        CRIT,
        15,
        256,
        0,
        ("battery_critical", "thermal_critical", "mode_critical"),
        id="crit-battery+crit-thermal",
    ),
    # conservative 60 vs warm 60 → 60, balanced
    pytest.param(
        phone(battery_percent=30.0, cpu_temp_c=46.0),
        BAL,
        60,
        None,
        4,
        ("battery_conservative", "thermal_warm", "mode_balanced"),
        id="cons+warm",
    ),
    # ── platform thermal status and °C: the stricter wins ──
    # android 3 = SEVERE ≥ hot level 3 → power_save, CPU 30, although 30 °C is cool
    pytest.param(
        phone(cpu_temp_c=30.0, platform_thermal=PlatformThermal("android", 3)),
        SAVE,
        30,
        512,
        1,
        ("thermal_hot", "mode_power_save"),
        id="android-3-over-30C",
    ),
    # android 0 = NOMINAL beside 70 °C ≥ critical 65: the reading is stricter → critical
    pytest.param(
        phone(cpu_temp_c=70.0, platform_thermal=PlatformThermal("android", 0)),
        CRIT,
        15,
        256,
        0,
        ("thermal_critical", "mode_critical"),
        id="android-0-beside-70C",
    ),
    # android 1 = LIGHT (warm) beside 58 °C ≥ hot 55: hot, both readings named
    pytest.param(
        phone(cpu_temp_c=58.0, platform_thermal=PlatformThermal("android", 1)),
        SAVE,
        30,
        512,
        1,
        ("thermal_warm", "thermal_hot", "mode_power_save"),
        id="android-1-beside-58C",
    ),
    # android 1 LIGHT and 2 MODERATE → warm (levels 1–2 < hot level 3)
    pytest.param(
        phone(platform_thermal=PlatformThermal("android", 1)),
        BAL,
        60,
        None,
        4,
        ("thermal_warm", "mode_balanced"),
        id="android-1",
    ),
    pytest.param(
        phone(platform_thermal=PlatformThermal("android", 2)),
        BAL,
        60,
        None,
        4,
        ("thermal_warm", "mode_balanced"),
        id="android-2",
    ),
    # android 5 EMERGENCY → CRITICAL level 4 → critical, CPU 15
    pytest.param(
        phone(platform_thermal=PlatformThermal("android", 5)),
        CRIT,
        15,
        256,
        0,
        ("thermal_critical", "mode_critical"),
        id="android-5",
    ),
    # ios 1 fair → LIGHT → warm; ios 2 serious → SEVERE → hot; ios 3 critical → critical
    pytest.param(
        phone(platform_thermal=PlatformThermal("ios", 1)),
        BAL,
        60,
        None,
        4,
        ("thermal_warm", "mode_balanced"),
        id="ios-1",
    ),
    pytest.param(
        phone(platform_thermal=PlatformThermal("ios", 2)),
        SAVE,
        30,
        512,
        1,
        ("thermal_hot", "mode_power_save"),
        id="ios-2",
    ),
    pytest.param(
        phone(platform_thermal=PlatformThermal("ios", 3)),
        CRIT,
        15,
        256,
        0,
        ("thermal_critical", "mode_critical"),
        id="ios-3",
    ),
    # ── low power mode: at least power_save, CPU ≤ 35 ──
    pytest.param(
        phone(low_power_mode=True),
        SAVE,
        35,
        512,
        1,
        ("low_power_mode", "mode_power_save"),
        id="lpm",
    ),
    # the owner asked for it, so it holds while charging too
    pytest.param(
        phone(low_power_mode=True, charging=True, battery_percent=50.0),
        SAVE,
        35,
        512,
        1,
        ("low_power_mode", "mode_power_save"),
        id="lpm-charging",
    ),
    # critical battery 20 < lpm 35 → 20, critical
    pytest.param(
        phone(low_power_mode=True, battery_percent=8.0),
        CRIT,
        20,
        256,
        0,
        ("battery_critical", "low_power_mode", "mode_critical"),
        id="lpm+crit-battery",
    ),
    pytest.param(phone(low_power_mode=None), PERF, 100, None, 8, (), id="lpm-unknown"),
    # ── memory: available < 1024 MB is low (≤ 1 task, half the free RAM per task) ──
    pytest.param(phone(ram_available_mb=1024), PERF, 100, None, 8, (), id="mem-1024"),
    # 1023 < 1024 → low: tasks min(8, 1) = 1; memory 1023 × 0.5 = 511
    pytest.param(phone(ram_available_mb=1023), PERF, 100, 511, 1, ("memory_low",), id="mem-1023"),
    # critical threshold 0.25 GB = 256 MB: 256 is not < 256 → still low; 256 × 0.5 = 128
    pytest.param(phone(ram_available_mb=256), PERF, 100, 128, 1, ("memory_low",), id="mem-256"),
    # 255 < 256 → critical: no new tasks; 255 × 0.5 = 127
    pytest.param(
        phone(ram_available_mb=255), PERF, 100, 127, 0, ("memory_critical",), id="mem-255"
    ),
    # power_save 512 MB vs memory low 700 × 0.5 = 350 → 350 (min)
    pytest.param(
        phone(battery_percent=15.0, ram_available_mb=700),
        SAVE,
        35,
        350,
        1,
        ("battery_low", "memory_low", "mode_power_save"),
        id="mem-low+bat-low",
    ),
    # ── devices and missing readings ──
    # 2 logical cores cap performance's 8 tasks at 2
    pytest.param(
        phone(capabilities=DeviceCapabilities(cpu_cores_logical=2, has_battery=True)),
        PERF,
        100,
        None,
        2,
        (),
        id="two-cores",
    ),
    # a desktop has no battery: a stray 0 % reading is ignored, mains power
    pytest.param(desktop(battery_percent=0.0), PERF, 100, None, 8, (), id="desktop-no-battery"),
    pytest.param(
        laptop(battery_percent=35.0),
        BAL,
        60,
        None,
        4,
        ("battery_conservative", "mode_balanced"),
        id="laptop-35",
    ),
    # nothing known: no rule applies
    pytest.param(
        DeviceProfile(device_id="bare", device_type=phone().device_type),
        PERF,
        100,
        None,
        8,
        (),
        id="all-unknown",
    ),
    # NaN readings count as absent, not as critical
    pytest.param(
        phone(battery_percent=math.nan, cpu_temp_c=math.nan), PERF, 100, None, 8, (), id="nan"
    ),
]


@pytest.mark.parametrize(("profile", "mode", "cpu", "memory", "tasks", "codes"), CASES)
def test_threshold_edges(
    profile: DeviceProfile,
    mode: PowerMode,
    cpu: float,
    memory: int | None,
    tasks: int,
    codes: tuple[str, ...],
) -> None:
    opt = evaluate(profile, P)
    assert opt.power_mode is mode
    assert opt.cpu_limit_percent == cpu
    assert opt.memory_limit_mb == memory
    assert opt.max_concurrent_tasks == tasks
    assert power_codes(opt) == codes
    assert opt.admits_work is (tasks > 0)


def test_reason_text_states_the_reading_and_the_rule() -> None:
    texts = {
        r.code: r.text for r in evaluate(phone(battery_percent=8.0, cpu_temp_c=56.0), P).reasons
    }
    assert (
        texts["battery_critical"] == "battery 8% ≤ critical 10%, not charging → critical, CPU ≤ 20%"
    )
    assert texts["thermal_hot"] == "CPU 56 °C ≥ hot 55 °C → power_save, CPU ≤ 30%"
    assert texts["mode_critical"] == "critical mode: no new tasks, memory ≤ 256 MB per task"


def test_charging_text_says_what_it_is_treated_as() -> None:
    opt = evaluate(phone(battery_percent=5.0, charging=True), P)
    (battery,) = [r for r in opt.reasons if r.code.startswith("battery_")]
    assert battery.text == (
        "battery 5% ≤ critical 10%, charging: treated as low → power_save, CPU ≤ 35%"
    )


def test_platform_text_names_the_status_and_the_rule() -> None:
    opt = evaluate(phone(cpu_temp_c=30.0, platform_thermal=PlatformThermal("ios", 2)), P)
    (thermal,) = [r for r in opt.reasons if r.code.startswith("thermal_")]
    assert "ios status 2 (severe)" in thermal.text
    assert "stricter of the platform's status and °C wins" in thermal.text


def test_every_reason_has_code_and_text() -> None:
    opt = evaluate(phone(battery_percent=8.0, cpu_temp_c=70.0, ram_available_mb=100), P)
    for reason in opt.reasons:
        assert reason.code and reason.code == reason.code.lower() and " " not in reason.code
        assert reason.text


def test_seed_custom_policy_moves_the_thresholds() -> None:
    custom = ResourcePolicy(battery_critical=5, thermal_hot=50.0, memory_low_gb=1.5)
    # 8 % > critical 5 → low band only: power_save, not critical
    assert evaluate(phone(battery_percent=8.0), custom).power_mode is SAVE
    assert evaluate(phone(battery_percent=5.0), custom).power_mode is CRIT
    # 51 °C ≥ hot 50 → power_save, CPU 30
    hot = evaluate(phone(cpu_temp_c=51.0), custom)
    assert (hot.power_mode, hot.cpu_limit_percent) == (SAVE, 30)
    # 1.4 GB free < 1.5 GB → memory low (the default 1 GB would not flag it)
    assert "memory_low" in evaluate(phone(ram_available_mb=1434), custom).reason_codes
    assert "memory_low" not in evaluate(phone(ram_available_mb=1434), P).reason_codes


def test_evaluate_is_deterministic_and_json_able() -> None:
    profile = phone(battery_percent=15.0, cpu_temp_c=50.0, ram_available_mb=500)
    first, second = evaluate(profile, P), evaluate(profile, P)
    assert first == second
    data = json.loads(json.dumps(first.to_dict()))
    assert data["power_mode"] == "power_save"
    assert data["chunk_size"] == first.chunking_config.effective_chunk_size()
    assert data["bands"] == {
        "battery": "low",
        "thermal": "warm",
        "memory": "low",
        "latency_high": False,
    }


def test_readings_in_reasons_are_rounded_for_people() -> None:
    # An emulated device's 52.5912 °C and 37.84213 % are shown as 52.6 °C and 37.8 %.
    opt = evaluate(phone(battery_percent=37.84213, cpu_temp_c=52.5912), P)
    texts = " ".join(r.text for r in opt.reasons)
    assert "CPU 52.6 °C" in texts and "battery 37.8%" in texts
    assert "52.5912" not in texts and "37.84213" not in texts
