"""One GPU per job on a machine with several: jobs that asked for a GPU each claim a different one
through a lock file per device, and see only that one through CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

VISIBLE = "CUDA_VISIBLE_DEVICES"
ORDER = "CUDA_DEVICE_ORDER"
LOCK_DIR_VARIABLE = "DIFFAUG_GPU_LOCK_DIR"
"""Environment variable naming the folder of the GPU lock files, in place of `default_lock_dir()`."""

log = logging.getLogger(__name__)


def default_lock_dir() -> Path:
    """The lock folder that all jobs of this user on this machine share (inside a SLURM allocation,
    those of that allocation, whose GPUs may be numbered like another's)."""
    if os.environ.get(LOCK_DIR_VARIABLE):
        return Path(os.environ[LOCK_DIR_VARIABLE])
    allocation = f"-slurm{os.environ['SLURM_JOB_ID']}" if os.environ.get("SLURM_JOB_ID") else ""
    return Path(tempfile.gettempdir()) / f"diffaug-gpu-locks-{os.getuid()}{allocation}"


def visible_gpus() -> list[str]:
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES's entries where it is set (empty: none),
    else the indices `nvidia-smi -L` lists (none where it is missing or fails). CUDA stays
    uninitialised, so that CUDA_VISIBLE_DEVICES can still be set afterwards."""
    if VISIBLE in os.environ:
        return _unique(entry.strip() for entry in os.environ[VISIBLE].split(","))
    return listed_gpus()


def listed_gpus() -> list[str]:
    """The indices of the GPUs that `nvidia-smi -L` lists; none where it is missing or fails."""
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return []
    return _unique(re.findall(r"^GPU (\d+):", listing.stdout, flags=re.MULTILINE))


@contextlib.contextmanager
def claim_gpu(
    gpu: int = 1,
    devices: Sequence[str] | None = None,
    lock_dir: str | Path | None = None,
    poll_seconds: float = 1.0,
) -> Iterator[str | None]:
    """For the block, hold one of `devices` (default `visible_gpus()`) that no other job holds and
    set CUDA_VISIBLE_DEVICES to it; wait while all are held. Yields the id, or None where it leaves
    the choice alone: `gpu` is 0 or at most one device is visible (a job that SLURM gave its GPU)."""
    if gpu <= 0:
        yield None
        return
    from_nvidia_smi = devices is None and VISIBLE not in os.environ
    devices = _unique(devices) if devices is not None else visible_gpus()
    if len(devices) <= 1:
        yield None
        return
    lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    with _held_lock(devices, lock_dir, poll_seconds) as device:
        # nvidia-smi numbers GPUs in PCI bus order; have CUDA number them the same way.
        settings = {VISIBLE: device, **({ORDER: "PCI_BUS_ID"} if from_nvidia_smi and ORDER not in os.environ else {})}
        log.info("this job uses GPU %s of %s", device, ", ".join(devices))
        with _environment(settings):
            yield device


@contextlib.contextmanager
def _held_lock(devices: list[str], lock_dir: Path, poll_seconds: float) -> Iterator[str]:
    """An exclusive lock on one device's file in `lock_dir`, kept while the block runs."""
    try:
        lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeError(
            f"cannot create the GPU lock folder {lock_dir} ({exc}); set {LOCK_DIR_VARIABLE} to a writable folder"
        ) from exc
    told_to_wait = False
    while True:
        for device in devices:
            path = lock_dir / f"gpu-{re.sub(r'[^A-Za-z0-9._-]', '_', device)}.lock"
            try:
                handle = open(path, "a+")
            except OSError as exc:
                raise RuntimeError(
                    f"cannot open the GPU lock file {path} ({exc}); set {LOCK_DIR_VARIABLE} to a writable folder"
                ) from exc
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            with handle:  # closing it (or the process dying) releases the lock
                handle.truncate(0)
                handle.write(f"{os.getpid()}\n")
                handle.flush()
                yield device
            return
        if not told_to_wait:
            log.warning(
                "all %d GPUs (%s) are held by other jobs; waiting for one to free up "
                "(where only this workflow uses them, give snakemake at most --resources gpu=%d)",
                len(devices),
                ", ".join(devices),
                len(devices),
            )
            told_to_wait = True
        time.sleep(poll_seconds)


@contextlib.contextmanager
def _environment(settings: dict[str, str]) -> Iterator[None]:
    """Environment variables set for the block, their previous values restored after it."""
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _unique(ids) -> list[str]:
    """Non-empty ids in order, each once."""
    return list(dict.fromkeys(entry for entry in ids if entry))
