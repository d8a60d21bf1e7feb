"""EdgeManager end to end in embedded mode: register, deploy for real, monitor."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from edge_models import ModelFactory

from fogmesh.clock import ManualClock
from fogmesh.devices import NetworkType, preset
from fogmesh.edge import EdgeManager, Variant
from fogmesh.errors import (
    DeviceError,
    DeviceNotFound,
    IllegalTransition,
    IntegrityError,
    InvalidRequest,
    ModelNotFound,
    SchedulingError,
)
from fogmesh.fog.coordinator import FogCoordinator
from fogmesh.mobile import ResourcePolicy

README_EXAMPLE = """
import asyncio
from fogmesh.edge import EdgeManager

async def main():
    edge_manager = EdgeManager()
    device = await edge_manager.register_device(
        device_id="my_device",
        device_name="Mobile Device",
        auto_detect=True,
    )
    deployment_id = await edge_manager.deploy_workload(
        device_id=device.device_id,
        model_id="tutor_agent_v1",
        deployment_type="inference",
    )
    status = edge_manager.get_device_status(device.device_id)
    print(f"Device status: {status}")
    print(deployment_id)

asyncio.run(main())
"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def edge(home: Path, clock: ManualClock) -> AsyncIterator[EdgeManager]:
    fog = FogCoordinator(data_dir=home, clock=clock, run_loop=False)
    manager = EdgeManager(fog, data_dir=home, clock=clock, monitor=False)
    yield manager
    await manager.close()
    await fog.close()


def run_model(path: Path, features: int) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.ones((2, features), dtype=np.float32)
    out: np.ndarray = session.run(None, {"x": x})[0]
    return out


def test_the_readme_example_runs_as_written(home: Path) -> None:
    # A real process: it must also exit by itself once asyncio.run returns.
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(README_EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"FOGMESH_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("Device status: {'device_id': 'my_device'")
    assert "'state': 'ready'" in lines[0]
    assert lines[1].startswith("dep-")
    assert done.stderr == ""


async def test_readme_calls_in_process_with_the_builtin_model(home: Path) -> None:
    async with EdgeManager(monitor=False) as manager:
        device = await manager.register_device(
            device_id="my_device", device_name="Mobile Device", auto_detect=True
        )
        assert device.device_id == "my_device"
        assert device.capabilities.cpu_cores_logical
        deployment_id = await manager.deploy_workload(
            device_id=device.device_id, model_id="tutor_agent_v1", deployment_type="inference"
        )
        status = manager.get_device_status(device.device_id)
        assert status["status"] == "online"
        assert status["deployments"][0]["deployment_id"] == deployment_id
        path = manager.model_cache("my_device").resolve("tutor_agent_v1")
        assert path is not None
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        probs = session.run(None, {"features": np.ones((3, 16), dtype=np.float32)})[0]
        assert probs.shape == (3, 8)
        assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)  # softmax rows


async def test_phone_gets_int8_in_small_chunks_desktop_gets_fp32(
    edge: EdgeManager, make_model: ModelFactory
) -> None:
    # 128 × 128 float32 weights = 64 KiB fp32, ≈ 16 KiB int8
    source = make_model(features=128, outputs=128)
    edge.registry.add(source, "tiny", make_int8=True)
    variants = edge.registry.variants("tiny")
    phone = await edge.register_device("phone", "Phone", profile="phone-charging")
    desk = await edge.register_device("desk", "Desktop", profile="desktop")
    assert phone.device_type.value == "smartphone"
    assert desk.device_type.value == "desktop"

    on_phone = edge.get_deployment(await edge.deploy_workload("phone", "tiny", "inference"))
    on_desk = edge.get_deployment(await edge.deploy_workload("desk", "tiny"))

    # phone policy unit 512 B × 16 over the internet link; desktop 2048 B × 16
    assert (on_phone["variant"], on_phone["chunk_size"], on_phone["link"]) == (
        "int8",
        8192,
        "internet",
    )
    assert (on_desk["variant"], on_desk["chunk_size"]) == ("fp32", 32768)
    for dep, variant in ((on_phone, Variant.INT8), (on_desk, Variant.FP32)):
        info = variants[variant]
        assert dep["state"] == "ready"
        assert dep["sha256"] == info.sha256
        assert dep["bytes_transferred"] == info.size_bytes
        assert dep["chunks"] == -(-info.size_bytes // dep["chunk_size"]) >= 2
        assert [h["state"] for h in dep["history"]] == [
            "pending",
            "transferring",
            "verifying",
            "ready",
        ]
        assert "ran in ONNX Runtime" in dep["history"][-1]["note"]
        assert any("chose" in r for r in dep["reasons"])

    phone_file = edge.model_cache("phone").resolve("tiny")
    desk_file = edge.model_cache("desk").resolve("tiny")
    assert phone_file is not None and desk_file is not None
    assert hashlib.sha256(phone_file.read_bytes()).hexdigest() == variants[Variant.INT8].sha256
    assert desk_file.read_bytes() == source.read_bytes()
    # the fp32 copy computes exactly what the source does; int8 is close to it
    expected = run_model(source, 128)
    assert np.allclose(run_model(desk_file, 128), expected, atol=1e-4)
    # int8 error scales with the output range (here ±130; onnxruntime 1.32 lands ~1.5 % off)
    got = run_model(phone_file, 128)
    assert np.max(np.abs(got - expected)) <= 0.03 * np.max(np.abs(expected))
    records = {r.device_id: r.models for r in await edge.coordinator.list_devices()}
    assert records == {"phone": ("tiny",), "desk": ("tiny",)}


async def test_the_scheduler_then_prefers_the_device_holding_the_model(
    edge: EdgeManager, make_model: ModelFactory
) -> None:
    edge.registry.add(make_model(seed=1), "model-x")
    edge.registry.add(make_model(seed=2), "model-y")
    await edge.register_device("desk-a", profile="desktop")
    await edge.register_device("desk-b", profile="desktop")
    # Crossed on purpose: a tie-break by id or order could satisfy one but not both.
    await edge.deploy_workload("desk-b", "model-x")
    await edge.deploy_workload("desk-a", "model-y")
    fog = edge.coordinator
    for model, holder in (("model-x", "desk-b"), ("model-y", "desk-a")):
        task_id = await fog.submit_task(
            "inference", payload={"type": "model", "model_id": model, "input": [[1.0] * 8]}
        )
        await fog.schedule_once()
        assert fog.get_task_status(task_id)["device"] == holder


async def test_two_deploys_in_the_same_instant_get_different_ids(
    edge: EdgeManager, make_model: ModelFactory
) -> None:
    # ManualClock: both deploys happen at exactly the same time
    edge.registry.add(make_model(), "m")
    await edge.register_device("desk", profile="desktop")
    first = await edge.deploy_workload("desk", "m")
    second = await edge.deploy_workload("desk", "m")
    assert first != second
    assert edge.get_deployment(first)["state"] == "superseded"
    assert edge.get_deployment(first)["reason"] == f"replaced by {second}"
    assert [d["deployment_id"] for d in edge.get_device_status("desk")["deployments"]] == [second]


async def test_unknown_ids_fail_clearly_and_record_nothing(
    edge: EdgeManager, make_model: ModelFactory
) -> None:
    await edge.register_device("desk", profile="desktop")
    with pytest.raises(ModelNotFound, match="fogmesh model add"):
        await edge.deploy_workload("desk", "no_such_model")
    with pytest.raises(DeviceNotFound):
        await edge.deploy_workload("ghost", "tutor_agent_v1")
    with pytest.raises(DeviceNotFound):
        edge.get_device_status("ghost")
    edge.registry.add(make_model(), "m")
    with pytest.raises(InvalidRequest, match="deployment type"):
        await edge.deploy_workload("desk", "m", "juggling")
    with pytest.raises(InvalidRequest, match="device id"):
        await edge.register_device("../x", profile="desktop")
    assert edge.get_device_status("desk")["deployments"] == []


async def test_a_tampered_blob_fails_the_deployment_and_installs_nothing(
    edge: EdgeManager, make_model: ModelFactory
) -> None:
    info = edge.registry.add(make_model(), "m")
    blob = edge.registry.blob_path(info)
    data = bytearray(blob.read_bytes())
    data[-5] ^= 0x40
    blob.write_bytes(bytes(data))
    await edge.register_device("desk", profile="desktop")
    with pytest.raises(IntegrityError) as caught:
        await edge.deploy_workload("desk", "m")
    record = edge.get_deployment(caught.value.details["deployment_id"])
    assert record["state"] == "failed"
    assert "do not match" in record["reason"]
    assert [h["state"] for h in record["history"]][-2:] == ["verifying", "failed"]
    assert edge.model_cache("desk").list() == []
    assert list(edge.model_cache("desk").incoming.iterdir()) == []
    assert (await edge.coordinator.get_device("desk")).models == ()


async def test_no_variant_that_fits_is_a_recorded_failure(
    edge: EdgeManager, make_model: ModelFactory
) -> None:
    edge.registry.add(make_model(), "m")
    # 300 MB available is the policy's "low" band (one task, memory ≤ fraction × available);
    # with the fraction at 0.05 a task may use 15 MB, below the runtime's own 32 MB.
    edge.policy = ResourcePolicy(memory_low_fraction=0.05)
    tight = preset("desktop").replace(ram_available_mb=300)
    await edge.register_device("tight", auto_detect=False, profile=tight)
    assert edge.get_device_status("tight")["limits"]["memory_limit_mb"] == 15
    with pytest.raises(SchedulingError, match="fits"):
        await edge.deploy_workload("tight", "m")
    [dep] = edge.get_device_status("tight")["deployments"]
    assert dep["state"] == "failed"
    assert "budget" in dep["reason"]


async def test_silent_devices_go_offline_and_come_back(
    edge: EdgeManager, clock: ManualClock
) -> None:
    reported = preset("raspberry-pi")
    await edge.register_device("pi", auto_detect=False, profile=reported)
    await edge.register_device("local-phone", profile="phone-charging")  # has a sensor source
    clock.advance(89.0)
    assert await edge.monitor_once() == []
    clock.advance(2.0)  # 91 s > 3 × 30 s without a report
    events = await edge.monitor_once()
    assert events == ["pi: offline (silent 91 s)"]
    assert edge.get_device_status("pi")["status"] == "offline"
    assert edge.get_device_status("local-phone")["status"] == "online"
    assert edge.get_system_status()["devices"] == {
        "total": 2,
        "online": 1,
        "offline": 1,
        "by_type": {"raspberry_pi": 1, "smartphone": 1},
    }
    with pytest.raises(DeviceError, match="offline"):
        await edge.deploy_workload("pi", "tutor_agent_v1")
    assert await edge.update_device_state("pi", reported) == ["pi: online"]
    assert edge.get_device_status("pi")["status"] == "online"


async def test_a_significant_change_reoptimises_the_deployment(
    edge: EdgeManager, make_model: ModelFactory, clock: ManualClock
) -> None:
    edge.registry.add(make_model(features=64, outputs=64), "m", make_int8=True)
    laptop = await edge.register_device("lap", profile="laptop-on-battery")  # 38 %, balanced
    first = await edge.deploy_workload("lap", "m")
    assert edge.get_deployment(first)["variant"] == "fp32"
    sensors = laptop.source
    assert sensors is not None and hasattr(sensors, "update")

    sensors.update(battery_percent=31.0)  # −7 points: drift, not a change
    clock.advance(30.0)
    assert await edge.monitor_once() == []

    sensors.update(battery_percent=15.0)  # −23 points from the baseline → power_save
    clock.advance(30.0)
    events = await edge.monitor_once()
    assert events[0].startswith("lap: battery 38% → 15%")
    assert "fp32 → int8" in events[1]
    status = edge.get_device_status("lap")
    assert status["power_mode"] == "power_save"
    [live] = status["deployments"]
    assert (live["variant"], live["state"]) == ("int8", "ready")
    assert edge.get_deployment(first)["state"] == "superseded"
    assert (
        "re-optimised: battery" in edge.get_deployment(live["deployment_id"])["history"][1]["note"]
    )


async def test_a_restarted_manager_knows_devices_and_deployments(
    home: Path, make_model: ModelFactory
) -> None:
    async with EdgeManager(data_dir=home, monitor=False) as first:
        first.registry.add(make_model(), "m")
        await first.register_device("desk", "Desk", profile="desktop")
        dep = await first.deploy_workload("desk", "m")
    async with EdgeManager(data_dir=home, monitor=False) as again:
        status = again.get_device_status("desk")
        assert status["device_name"] == "Desk"
        assert status["deployments"][0]["deployment_id"] == dep
        assert again.model_cache("desk").resolve("m") is not None
        assert again.get_system_status()["deployments"]["ready"] == 1


async def test_the_monitoring_loop_runs_by_itself_and_stops_on_close(home: Path) -> None:
    manager = EdgeManager(data_dir=home, monitor_interval=0.02, offline_after=0.05)
    try:
        await manager.register_device("pi", auto_detect=False, profile=preset("raspberry-pi"))
        deadline = time.monotonic() + 5.0
        while manager.get_device_status("pi")["status"] != "offline":
            assert time.monotonic() < deadline, "the loop never marked the silent device offline"
            await asyncio.sleep(0.01)
        task = manager._monitor_task
        assert task is not None and not task.done()
    finally:
        await manager.close()
    assert task.done()


async def test_an_offline_from_internet_phone_gets_mesh_sized_chunks(
    edge: EdgeManager, make_model: ModelFactory
) -> None:
    edge.registry.add(make_model(features=64, outputs=64), "m", make_int8=True)
    # 18 % battery and no internet: bitchat_only, so the policy's own unit (pressure-reduced
    # from the phone's 512 B) is the chunk size
    mesh_phone = preset("phone-low-battery").replace(network_type=NetworkType.NONE)
    await edge.register_device("mesh-phone", auto_detect=False, profile=mesh_phone)
    unit = edge.get_device_status("mesh-phone")["limits"]["chunk_size"]
    dep = edge.get_deployment(await edge.deploy_workload("mesh-phone", "m"))
    assert (dep["link"], dep["variant"], dep["state"]) == ("mesh", "int8", "ready")
    assert (
        dep["chunk_size"]
        == unit
        == edge.get_device_status("mesh-phone")["limits"]["model_chunk_size"]
    )
    assert unit < 512


async def test_a_device_that_admits_no_work_gets_no_deployment(
    edge: EdgeManager, make_model: ModelFactory
) -> None:
    edge.registry.add(make_model(), "m", make_int8=True)
    await edge.register_device("dying", profile="phone-critical-battery")  # 7 %: critical
    with pytest.raises(SchedulingError, match="admits no work"):
        await edge.deploy_workload("dying", "m")
    [dep] = edge.get_device_status("dying")["deployments"]
    assert dep["state"] == "failed"
    assert edge.model_cache("dying").list() == []


async def test_undeploy_removes_the_model_from_device_and_scheduler(
    edge: EdgeManager, make_model: ModelFactory
) -> None:
    edge.registry.add(make_model(), "m")
    await edge.register_device("desk", profile="desktop")
    dep = await edge.deploy_workload("desk", "m")
    assert edge.model_cache("desk").resolve("m") is not None
    removed = await edge.undeploy(dep)
    assert removed["state"] == "removed"
    assert edge.model_cache("desk").resolve("m") is None
    assert (await edge.coordinator.get_device("desk")).models == ()
    assert edge.get_device_status("desk")["deployments"] == []
    with pytest.raises(IllegalTransition, match="only a ready one"):
        await edge.undeploy(dep)
