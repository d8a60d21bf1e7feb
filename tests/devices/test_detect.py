"""Real detection against fake machines built under tmp_path (and once against this machine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from device_fakes import GIB, FakeHost, Tree

from fogmesh.devices import DeviceType, NetworkType, RealSensors, detect, detect_capabilities
from fogmesh.devices.detect import BatteryReading, CpuTimes, PlatformInfo
from fogmesh.errors import ConfigError, DeviceError


def read(tree: Tree, host: FakeHost, **kwargs: object) -> object:
    return RealSensors(root=tree.root, host=host, **kwargs).read()  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# power


def test_phone_like_battery(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.battery(capacity=42, status="Discharging")
    tree.supply("usb", "USB", online=0)
    tree.supply("ac", "Mains", online=0)
    host.mem = (2816 * 1024**2, 1100 * 1024**2)
    host.logical = 8
    profile = detect(root=tree.root, host=host, device_id="p1")
    assert profile.capabilities.has_battery is True
    assert profile.battery_percent == 42.0
    assert profile.charging is False
    assert profile.device_type is DeviceType.SMARTPHONE
    assert profile.ram_available_mb == 1100
    assert profile.ram_used_mb == 2816 - 1100


def test_battery_at_zero_percent_is_a_reading_not_absence(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.battery(capacity=0, status="Discharging")
    profile = detect(root=tree.root, host=host, device_id="p1")
    assert profile.battery_percent == 0.0
    assert profile.capabilities.has_battery is True


# status of the battery, (external supply kind, online) pairs → charging
CHARGING_CASES = {
    "charging": ("Charging", [], True),
    "discharging": ("Discharging", [], False),
    "full means plugged in": ("Full", [], True),
    "not charging means plugged in (charge threshold)": ("Not charging", [], True),
    "unknown status, usb online": ("Unknown", [("USB", 1)], True),
    "unknown status, mains offline": ("Unknown", [("Mains", 0)], False),
    "unknown status, nothing else known": ("Unknown", [], None),
    "garbage status": ("\x01\x02", [], None),
    "discharging under load with the adapter in": ("Discharging", [("Mains", 1)], True),
}


@pytest.mark.parametrize(
    ("status", "externals", "expected"), CHARGING_CASES.values(), ids=CHARGING_CASES.keys()
)
def test_charging_state(
    tree: Tree,
    host: FakeHost,
    status: str,
    externals: list[tuple[str, int]],
    expected: bool | None,
) -> None:
    tree.sys_classes()
    tree.battery(capacity=50, status=status)
    for i, (kind, online) in enumerate(externals):
        tree.supply(f"ext{i}", kind, online)
    assert detect(root=tree.root, host=host, device_id="x").charging is expected


def test_peripheral_battery_is_not_ours(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.battery("hidpp_battery_0", capacity=80, status="Discharging", scope="Device")
    profile = detect(root=tree.root, host=host, device_id="x")
    assert profile.capabilities.has_battery is False
    assert profile.battery_percent is None
    assert profile.charging is None


def test_empty_battery_slot_is_not_a_battery(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.battery("BAT1", present=0)
    assert detect(root=tree.root, host=host, device_id="x").capabilities.has_battery is False


def test_two_batteries_are_weighted_by_capacity(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.battery("BAT0", capacity=100, energy_now=20_000_000, energy_full=20_000_000)
    tree.battery("BAT1", capacity=0, energy_now=0, energy_full=60_000_000)
    # (100 × 20 + 0 × 60) / (20 + 60) = 25 %
    assert detect(root=tree.root, host=host, device_id="x").battery_percent == 25.0


def test_percent_from_charge_counters_when_capacity_is_missing(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.battery(charge_now=1500, charge_full=3000, status="Discharging")
    assert detect(root=tree.root, host=host, device_id="x").battery_percent == 50.0


@pytest.mark.parametrize(
    ("capacity", "expected"),
    [("abc", None), ("", None), ("104", 100.0), ("-1", None), ("99", 99.0)],
)
def test_odd_capacity_values(
    tree: Tree, host: FakeHost, capacity: str, expected: float | None
) -> None:
    tree.sys_classes()
    tree.battery(capacity=capacity, status="Discharging")
    profile = detect(root=tree.root, host=host, device_id="x")
    assert profile.battery_percent == expected
    assert profile.capabilities.has_battery is True


def test_without_power_supply_class_psutil_battery_is_used(tree: Tree, host: FakeHost) -> None:
    tree.mkdir("sys/class/net")
    host.batt = BatteryReading(percent=63.0, charging=True)
    profile = detect(root=tree.root, host=host, device_id="x")
    assert (profile.capabilities.has_battery, profile.battery_percent, profile.charging) == (
        True,
        63.0,
        True,
    )


def test_without_any_battery_source_battery_is_unknown(tree: Tree, host: FakeHost) -> None:
    tree.mkdir("sys/class/net")
    profile = detect(root=tree.root, host=host, device_id="x")
    assert profile.capabilities.has_battery is None
    assert profile.battery_percent is None


@pytest.mark.parametrize(
    ("content", "expected"), [("low-power", True), ("balanced", False), (None, None)]
)
def test_low_power_mode_from_platform_profile(
    tree: Tree, host: FakeHost, content: str | None, expected: bool | None
) -> None:
    tree.sys_classes()
    if content is not None:
        tree.write("sys/firmware/acpi/platform_profile", content)
    assert detect(root=tree.root, host=host, device_id="x").low_power_mode is expected


# ---------------------------------------------------------------------------------------------
# thermal


THERMAL_CASES = {
    "cpu zone beats a hotter-looking non-cpu one": (
        [("acpitz", 70000), ("x86_pkg_temp", 55000)],
        55.0,
    ),
    "hottest of several cpu zones": ([("cpu0-thermal", 48000), ("cpu1-thermal", 51500)], 51.5),
    "no cpu zone: hottest of all": ([("battery", 38000), ("skin-therm", 41000)], 41.0),
    "whole degrees": ([("soc_thermal", 48)], 48.0),
    "garbage ignored": ([("cpu-thermal", "hot"), ("acpitz", 40000)], 40.0),
    "zero and -273 ignored": ([("cpu-thermal", 0), ("cpu1-thermal", -273000)], None),
    "255 °C ignored": ([("cpu-thermal", 255000)], None),
}


@pytest.mark.parametrize(("zones", "expected"), THERMAL_CASES.values(), ids=THERMAL_CASES.keys())
def test_cpu_temperature_from_thermal_zones(
    tree: Tree, host: FakeHost, zones: list[tuple[str, object]], expected: float | None
) -> None:
    tree.sys_classes()
    for i, (kind, temp) in enumerate(zones):
        tree.zone(i, kind, temp)  # type: ignore[arg-type]
    assert detect(root=tree.root, host=host, device_id="x").cpu_temp_c == expected


def test_disabled_zone_is_skipped(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.zone(0, "cpu-thermal", 90000)
    tree.write("sys/class/thermal/thermal_zone0/mode", "disabled")
    tree.zone(1, "cpu-thermal", 45000)
    assert detect(root=tree.root, host=host, device_id="x").cpu_temp_c == 45.0


def test_missing_thermal_dir_is_none(tree: Tree, host: FakeHost) -> None:
    tree.mkdir("sys/class/power_supply")
    assert not (tree.root / "sys/class/thermal").exists()
    assert detect(root=tree.root, host=host, device_id="x").cpu_temp_c is None


def test_psutil_sensors_are_a_second_source(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.zone(0, "acpitz", 45000)
    host.temps = {"coretemp": [("Package id 0", 61.0), ("Core 0", 58.0)], "nvme": [("", 70.0)]}
    # coretemp is CPU-ish, so it wins over the hotter NVMe and the non-CPU acpitz zone.
    assert detect(root=tree.root, host=host, device_id="x").cpu_temp_c == 61.0


# ---------------------------------------------------------------------------------------------
# network


def _network(tree: Tree, host: FakeHost) -> tuple[NetworkType | None, bool | None]:
    profile = detect(root=tree.root, host=host, device_id="x")
    return profile.network_type, profile.metered


def test_wifi(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.iface("wlan0", wireless=True)
    assert _network(tree, host) == (NetworkType.WIFI, None)


def test_wifi_by_phy80211_and_by_devtype(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.iface("wlp2s0")
    tree.mkdir("sys/class/net/wlp2s0/phy80211")
    assert _network(tree, host)[0] is NetworkType.WIFI
    tree.iface("mlan0", devtype="wlan")
    tree.iface("wlp2s0", up=False)
    assert _network(tree, host)[0] is NetworkType.WIFI


def test_wwan_interface_is_cellular_and_metered(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.iface("wwan0", physical=False)
    assert _network(tree, host) == (NetworkType.CELLULAR, True)


@pytest.mark.parametrize("name", ["rmnet_data0", "ccmni1", "rmnet0"])
def test_android_modem_names_are_cellular(tree: Tree, host: FakeHost, name: str) -> None:
    tree.sys_classes()
    tree.iface(name, physical=False, operstate="unknown")
    tree.write(f"sys/class/net/{name}/carrier", "1")
    assert _network(tree, host)[0] is NetworkType.CELLULAR


def test_devtype_wwan_is_cellular_whatever_the_name(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.iface("usb0", devtype="wwan")
    assert _network(tree, host)[0] is NetworkType.CELLULAR


def test_virtual_interfaces_are_ignored(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.iface("lo", physical=False, operstate="unknown")
    tree.iface("ifb0", physical=False)
    tree.iface("veth12ab", physical=False)
    tree.iface("docker0", physical=False, devtype="bridge")
    tree.iface("br0", physical=False, devtype="bridge")
    assert _network(tree, host)[0] is NetworkType.NONE


def test_interface_down_is_not_counted(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.iface("eth0", up=False)
    tree.iface("wlan0", wireless=True)
    assert _network(tree, host)[0] is NetworkType.WIFI


def test_several_links_up_prefers_wired(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.iface("wlan0", wireless=True)
    tree.iface("eth0")
    tree.iface("wwan0", physical=False)
    assert _network(tree, host)[0] is NetworkType.ETHERNET


def test_default_route_decides_between_links(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.iface("eth0")
    tree.iface("wwan0", physical=False)
    tree.default_route("wwan0")
    assert _network(tree, host) == (NetworkType.CELLULAR, True)


def test_ipv6_default_route_counts_too(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.iface("eth0")
    tree.iface("wlan0", wireless=True)
    zeros = "0" * 32
    tree.write(
        "proc/net/ipv6_route",
        f"{zeros} 00 {zeros} 00 fe800000000000000000000000000001 00000400 00000001 "
        "00000000 00000003 wlan0",
    )
    assert _network(tree, host)[0] is NetworkType.WIFI


def test_no_net_dir_is_unknown_not_none(tree: Tree, host: FakeHost) -> None:
    tree.mkdir("sys/class/power_supply")
    assert _network(tree, host) == (None, None)


# ---------------------------------------------------------------------------------------------
# board, GPU, identity, platform


def test_raspberry_pi_from_device_tree(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.write("proc/device-tree/model", b"Raspberry Pi 4 Model B Rev 1.4\x00")
    tree.iface("eth0")
    host.mem = (3796 * 1024**2, 3000 * 1024**2)  # 4 GB: above the seed's 2 GB rule
    profile = detect(root=tree.root, host=host, device_id="pi")
    assert profile.capabilities.board_model == "Raspberry Pi 4 Model B Rev 1.4"
    assert profile.device_type is DeviceType.RASPBERRY_PI


def test_raspberry_pi_from_cpuinfo_when_device_tree_is_hidden(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.write(
        "proc/cpuinfo",
        "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\n"
        "Model\t\t: Raspberry Pi 3 Model B Plus Rev 1.3",
    )
    caps = detect_capabilities(root=tree.root, host=host)
    assert caps.board_model == "Raspberry Pi 3 Model B Plus Rev 1.3"
    assert caps.cpu_model == "BCM2835"


def test_x86_cpuinfo_model_number_is_not_a_board(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.write("proc/cpuinfo", "processor\t: 0\nmodel\t\t: 17\nmodel name\t: AMD EPYC 7B13")
    caps = detect_capabilities(root=tree.root, host=host)
    assert (caps.cpu_model, caps.board_model) == ("AMD EPYC 7B13", None)


def test_binary_garbage_in_device_tree_model_is_ignored(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.write("proc/device-tree/model", b"\x01\x02\xff")
    assert detect_capabilities(root=tree.root, host=host).board_model is None


def test_cpu_frequency_from_cpufreq(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.write("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "1800000")
    host.freq_mhz = 999.0
    assert detect_capabilities(root=tree.root, host=host).cpu_freq_mhz == 1800.0


def test_nvidia_gpu(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.write("dev/nvidia0", "")
    tree.write("dev/nvidiactl", "")
    tree.write(
        "proc/driver/nvidia/gpus/0000:01:00.0/information",
        "Model: \t\t NVIDIA GeForce RTX 3060\nIRQ: 130",
    )
    caps = detect_capabilities(root=tree.root, host=host)
    assert (caps.has_gpu, caps.gpu_name) == (True, "NVIDIA GeForce RTX 3060")


def test_amd_gpu_with_vram_from_drm(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.write("sys/class/drm/card0/device/vendor", "0x1002")
    tree.write("sys/class/drm/card0/device/uevent", "DRIVER=amdgpu\nPCI_ID=1002:73FF")
    tree.write("sys/class/drm/card0/device/mem_info_vram_total", str(8 * GIB))
    tree.mkdir("sys/class/drm/card0-DP-1")
    caps = detect_capabilities(root=tree.root, host=host)
    assert (caps.has_gpu, caps.gpu_name, caps.gpu_memory_mb) == (True, "AMD (amdgpu)", 8192)


def test_virtual_display_adapter_is_no_gpu(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.write("sys/class/drm/card0/device/vendor", "0x1af4")
    tree.write("sys/class/drm/card0/device/uevent", "DRIVER=virtio-pci")
    assert detect_capabilities(root=tree.root, host=host).has_gpu is False


def test_gpu_unknown_without_sysfs(tree: Tree, host: FakeHost) -> None:
    assert detect_capabilities(root=tree.root, host=host).has_gpu is None


def test_device_id_is_a_keyed_hash_of_machine_id(tree: Tree, host: FakeHost) -> None:
    machine_id = "3d1219c7c4c5404aaa1f6d2a48adfda4"
    tree.write("etc/machine-id", machine_id)
    first = RealSensors(root=tree.root, host=host).device_id()
    again = RealSensors(root=tree.root, host=host).device_id()
    assert first == again
    assert first.startswith("testbox-")
    assert machine_id[:8] not in first


def test_device_id_falls_back_to_hostname(tree: Tree, host: FakeHost) -> None:
    host.info = PlatformInfo("linux", None, None, "My Phone")
    assert RealSensors(root=tree.root, host=host).device_id() == "my-phone"


def test_device_id_without_any_identity_is_a_device_error(tree: Tree, host: FakeHost) -> None:
    host.info = PlatformInfo("linux", None, None, None)
    with pytest.raises(DeviceError):
        RealSensors(root=tree.root, host=host).device_id()


def test_android_is_recognised_from_its_system_partition(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    tree.write("system/build.prop", "ro.build.version.release=14")
    assert detect_capabilities(root=tree.root, host=host).os == "android"


def test_transports_follow_network_links_and_bluetooth(tree: Tree, host: FakeHost) -> None:
    tree.sys_classes()
    assert detect_capabilities(root=tree.root, host=host).supported_transports == ()
    tree.iface("wlan0", wireless=True, up=False)
    tree.mkdir("sys/class/bluetooth/hci0")
    caps = detect_capabilities(root=tree.root, host=host)
    assert caps.supported_transports == ("betanet", "bitchat")


def test_bare_machine_gives_absent_readings_not_defaults(tmp_path: Path) -> None:
    host = FakeHost(
        logical=None, physical=None, mem=None, disk_usage=None,
        info=PlatformInfo(None, None, None, "bare"),
    )  # fmt: skip
    profile = detect(root=tmp_path, host=host)
    caps = profile.capabilities
    assert profile.device_id == "bare"
    assert [caps.cpu_cores_logical, caps.ram_total_mb, caps.storage_total_gb] == [None] * 3
    assert [caps.has_battery, caps.has_gpu, caps.os, caps.board_model] == [None] * 4
    for reading in ("battery_percent", "charging", "cpu_temp_c", "cpu_percent", "ram_used_mb",
                    "network_type", "metered", "low_power_mode"):  # fmt: skip
        assert getattr(profile, reading) is None, reading
    assert profile.device_type is DeviceType.SMARTPHONE  # unknown battery and RAM: most fragile


# ---------------------------------------------------------------------------------------------
# CPU load, caching, overrides


def test_cpu_percent_needs_a_long_enough_window(tree: Tree, host: FakeHost) -> None:
    host.logical = 4
    host.times = [
        CpuTimes(busy=0.0, total=0.0),  # baseline taken when the source is created
        CpuTimes(busy=0.004, total=0.02),  # 0.02 s over 4 cores: 5 ms each, too short
        CpuTimes(busy=1.0, total=4.0),  # 1 s per core since baseline: 1 / 4 = 25 %
        CpuTimes(busy=1.01, total=4.04),  # 10 ms more: too short, keep the last value
        CpuTimes(busy=3.0, total=8.0),  # since (1, 4): 2 / 4 = 50 %
    ]
    sensors = RealSensors(root=tree.root, host=host, device_id="x")
    assert [sensors.read().cpu_percent for _ in range(4)] == [None, 25.0, 25.0, 50.0]


def test_static_capabilities_are_cached_and_live_readings_are_not(
    tree: Tree, host: FakeHost
) -> None:
    tree.sys_classes()
    tree.battery(capacity=80, status="Discharging")
    sensors = RealSensors(root=tree.root, host=host, device_id="x")
    first = sensors.read()
    tree.battery(capacity=79, status="Charging")
    host.mem = (16 * GIB, 1 * GIB)
    host.disk_usage = (64 * GIB, 8 * GIB)
    second = sensors.read()
    assert (second.battery_percent, second.charging) == (79.0, True)
    assert second.ram_available_mb == 1024
    assert second.capabilities.storage_free_gb == 8.0  # re-read every time
    assert second.capabilities.ram_total_mb == first.capabilities.ram_total_mb == 8192
    assert sensors.refresh().ram_total_mb == 16384


def test_override_argument_and_environment(
    tree: Tree, host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree.sys_classes()
    monkeypatch.delenv("FOGMESH_DEVICE_TYPE", raising=False)
    assert detect(root=tree.root, host=host, device_id="x").device_type is DeviceType.DESKTOP
    monkeypatch.setenv("FOGMESH_DEVICE_TYPE", "tablet")
    assert detect(root=tree.root, host=host, device_id="x").device_type is DeviceType.TABLET
    # the argument beats the environment
    profile = detect(root=tree.root, host=host, device_id="x", override_type="laptop")
    assert profile.device_type is DeviceType.LAPTOP


def test_bad_override_in_environment_names_the_variable(
    tree: Tree, host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOGMESH_DEVICE_TYPE", "toaster")
    with pytest.raises(ConfigError) as err:
        detect(root=tree.root, host=host, device_id="x")
    assert err.value.field == "FOGMESH_DEVICE_TYPE"


def test_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOGMESH_DEVICE_TYPE", raising=False)
    profile = detect()
    caps = profile.capabilities
    assert isinstance(profile.device_type, DeviceType)
    assert profile.device_id and profile.timestamp is not None
    assert caps.cpu_cores_logical is not None and caps.cpu_cores_logical >= 1
    assert caps.ram_total_mb is not None and caps.ram_total_mb > 0
    assert profile.ram_available_mb is not None
    assert profile.battery_percent is None or 0 <= profile.battery_percent <= 100
    if caps.has_battery is False:
        assert profile.battery_percent is None and profile.charging is None
    # the same process-wide source serves later calls, with the same identity
    assert detect().device_id == profile.device_id
