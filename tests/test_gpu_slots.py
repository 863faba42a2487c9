import os
import select
import signal
import subprocess
import sys

import pytest

from diffaug.gpu_slots import LOCK_DIR_VARIABLE, claim_gpu, default_lock_dir, visible_gpus

HOLDER = """
import logging, os, sys
from diffaug.gpu_slots import claim_gpu
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
with claim_gpu(1, lock_dir=sys.argv[1], poll_seconds=0.05) as device:
    print(device, os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
    sys.stdin.read()
"""
"""A job that claims a GPU, prints what it got and holds it until its stdin closes."""


@pytest.fixture
def holders(tmp_path):
    """Starts holder processes sharing one lock folder; ends them after the test."""
    started = []

    def start(visible: str) -> subprocess.Popen:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": visible}
        env.pop("SLURM_JOB_ID", None)
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tmp_path / "locks")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            pipe.close()


def claimed(process: subprocess.Popen, timeout: float = 10.0) -> str | None:
    """The device a holder claimed, or None if it has not claimed one within `timeout` seconds."""
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        return None
    device, visible = process.stdout.readline().split()
    assert visible == device
    return device


def release(process: subprocess.Popen) -> str:
    """Ends a holder normally; its stderr."""
    _, errors = process.communicate(timeout=10)
    assert process.returncode == 0, errors
    return errors


@pytest.fixture
def no_scheduler(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)


def test_concurrent_jobs_each_get_a_different_gpu(holders):
    jobs = [holders("0,1,2") for _ in range(3)]
    assert sorted(claimed(job) for job in jobs) == ["0", "1", "2"]
    for job in jobs:
        release(job)


def test_a_job_waits_while_all_gpus_are_held_and_gets_the_one_freed(holders):
    first, second = holders("0,1"), holders("0,1")
    held = {claimed(first): first, claimed(second): second}
    assert sorted(held) == ["0", "1"]
    third = holders("0,1")
    assert claimed(third, timeout=1.0) is None  # waits, polling every 0.05 s
    release(held["1"])
    assert claimed(third) == "1"
    assert release(third).count("held by other jobs; waiting") == 1
    release(held["0"])


def test_a_killed_job_frees_its_gpu(holders):
    first, second = holders("0,1"), holders("0,1")
    held = {claimed(first): first, claimed(second): second}
    held["0"].send_signal(signal.SIGKILL)
    held["0"].wait(timeout=10)
    assert claimed(holders("0,1")) == "0"


def test_the_claim_sets_cuda_visible_devices_for_the_block_only(tmp_path, monkeypatch, no_scheduler, caplog):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    caplog.set_level("INFO")
    with claim_gpu(1, lock_dir=tmp_path) as first:
        assert first == "4" and os.environ["CUDA_VISIBLE_DEVICES"] == "4"
        with claim_gpu(1, devices=["4", "5"], lock_dir=tmp_path) as second:  # another holder, here in-process
            assert second == "5" and os.environ["CUDA_VISIBLE_DEVICES"] == "5"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "4"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5"
    assert "this job uses GPU 4 of 4, 5" in caplog.text
    with claim_gpu(1, lock_dir=tmp_path) as again:  # released on leaving the block
        assert again == "4"


def test_a_failing_block_releases_its_gpu_and_restores_the_variable(tmp_path, monkeypatch, no_scheduler):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(ValueError), claim_gpu(1, lock_dir=tmp_path):
        raise ValueError("step failed")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
    with claim_gpu(1, lock_dir=tmp_path) as device:
        assert device == "0"


def test_under_slurm_a_job_keeps_its_gpu_and_an_allocation_shares_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")  # a job that SLURM gave one GPU
    with claim_gpu(1, lock_dir=tmp_path / "locks") as device:
        assert device is None and os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    assert not (tmp_path / "locks").exists()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # local jobs inside an allocation of two
    monkeypatch.delenv("DIFFAUG_GPU_LOCK_DIR", raising=False)
    assert default_lock_dir().name.endswith("-slurm123")
    with claim_gpu(1, lock_dir=tmp_path / "locks") as device:
        assert device == "2" and os.environ["CUDA_VISIBLE_DEVICES"] == "2"


@pytest.mark.parametrize(("gpu", "visible"), [(0, "0,1"), (1, "3"), (1, "")])
def test_no_gpu_asked_or_at_most_one_visible_leaves_the_variable_alone(
    tmp_path, monkeypatch, no_scheduler, gpu, visible
):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with claim_gpu(gpu, lock_dir=tmp_path / "locks") as device:
        assert device is None and os.environ["CUDA_VISIBLE_DEVICES"] == visible
    assert not (tmp_path / "locks").exists()


def fake_nvidia_smi(folder, monkeypatch, script: str):
    """Puts an `nvidia-smi` running `script` first on PATH, with CUDA_VISIBLE_DEVICES unset."""
    folder.mkdir()
    program = folder / "nvidia-smi"
    program.write_text(f"#!/bin/sh\n{script}\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)


def test_without_cuda_visible_devices_the_gpus_are_those_nvidia_smi_lists(tmp_path, monkeypatch, no_scheduler):
    fake_nvidia_smi(
        tmp_path / "bin",
        monkeypatch,
        "echo 'GPU 0: NVIDIA RTX A6000 (UUID: GPU-0a1b)'\n"
        "echo 'GPU 1: NVIDIA RTX A6000 (UUID: GPU-2c3d)'\n"
        "echo '  MIG 1g.10gb Device 0: (UUID: MIG-4e5f)'",
    )
    assert visible_gpus() == ["0", "1"]
    with claim_gpu(1, lock_dir=tmp_path / "locks") as device:
        assert device == "0" and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # CUDA numbers the GPUs as nvidia-smi does
    assert "CUDA_VISIBLE_DEVICES" not in os.environ and "CUDA_DEVICE_ORDER" not in os.environ


@pytest.mark.parametrize("script", ["echo 'NVIDIA-SMI has failed' >&2; exit 9", None])
def test_a_failing_or_missing_nvidia_smi_means_no_gpus(tmp_path, monkeypatch, no_scheduler, script):
    fake_nvidia_smi(tmp_path / "bin", monkeypatch, script or "exit 0")
    if script is None:
        (tmp_path / "bin" / "nvidia-smi").unlink()
    assert visible_gpus() == []
    with claim_gpu(1, lock_dir=tmp_path / "locks") as device:
        assert device is None and "CUDA_VISIBLE_DEVICES" not in os.environ


def test_an_empty_cuda_visible_devices_hides_all_gpus(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path / "bin", monkeypatch, "echo 'GPU 0: A'; echo 'GPU 1: B'")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_the_lock_folder_is_per_user_unless_set(tmp_path, monkeypatch):
    monkeypatch.delenv(LOCK_DIR_VARIABLE, raising=False)
    assert default_lock_dir().name == f"diffaug-gpu-locks-{os.getuid()}"
    monkeypatch.setenv(LOCK_DIR_VARIABLE, str(tmp_path))
    assert default_lock_dir() == tmp_path


def test_an_unusable_lock_folder_says_how_to_choose_another(tmp_path, monkeypatch, no_scheduler):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(RuntimeError, match=LOCK_DIR_VARIABLE), claim_gpu(1, lock_dir=tmp_path / "file" / "locks"):
        pass
