"""Where a step computes and in which precision: the `device` and `precision` settings."""

from __future__ import annotations

import contextlib

import torch

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str, key: str = "device") -> torch.device:
    """`auto` picks CUDA when this process sees a CUDA device; `cuda` without one is an error
    naming the setting `key`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"{key} is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


def reduced_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision setting; None (fp32) on a CPU, where reduced precision
    is slower and would change results for nothing."""
    return DTYPES[precision] if device.type == "cuda" else None


def autocast(device: torch.device, precision: str):
    """Mixed precision on CUDA where asked; a no-op otherwise."""
    dtype = reduced_dtype(device, precision)
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def will_use_cuda(setting: str, cuda_here: bool) -> bool:
    """Whether a job with this device setting computes on a GPU: `cuda`, or `auto` on a machine
    with CUDA. The workflow asks the scheduler for a GPU exactly then."""
    return setting == "cuda" or (setting == "auto" and cuda_here)
