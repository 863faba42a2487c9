"""Where a step computes and in which precision: the `device` and `precision` settings."""

from __future__ import annotations

import contextlib
import logging
import os

import torch

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
GPU_REQUESTED = "DIFFAUG_GPU_REQUESTED"
"""Environment variable set to 1 in a job that the workflow gave a `gpu` resource."""

log = logging.getLogger(__name__)


def resolve_device(name: str, key: str = "device") -> torch.device:
    """`auto` picks CUDA when this process sees a CUDA device (and warns when a job that asked for a
    GPU finds none); `cuda` without one is an error naming the setting `key`."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if os.environ.get(GPU_REQUESTED) == "1":
            log.warning(
                "%s is 'auto' and this job asked for a GPU, but it sees no CUDA device: running on the CPU", key
            )
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"{key} is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


def reduced_dtype(device: torch.device, precision: str, cpu_bf16: bool = False) -> torch.dtype | None:
    """The autocast dtype of a precision setting on a device: as asked on CUDA; on a CPU fp32, or
    with `cpu_bf16` bf16 where the CPU computes it natively (AMX, AVX512-BF16)."""
    if device.type == "cuda":
        return DTYPES[precision]
    return torch.bfloat16 if cpu_bf16 and precision == "bf16" and native_cpu_bf16() else None


def native_cpu_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX); others would only emulate it."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def autocast(device: torch.device, precision: str, cpu_bf16: bool = False):
    """Mixed precision where `reduced_dtype` gives one; a no-op otherwise."""
    dtype = reduced_dtype(device, precision, cpu_bf16)
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def runtime_signature(device: torch.device, precision: str, cpu_bf16: bool = False) -> str:
    """Device kind and the precision computed in, e.g. "cuda bf16" or "cpu fp32": what a run's
    numbers depend on beyond its settings, recorded with its outputs and in checkpoint keys."""
    dtype = reduced_dtype(device, precision, cpu_bf16)
    return f"{device.type} {next(name for name, value in DTYPES.items() if value == dtype)}"
