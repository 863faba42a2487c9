"""Running one workflow step: its log file gets the progress bars, the log records and, on
failure, the error; the terminal gets the warnings and the error's message."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from pathlib import Path

import torch

from .devices import GPU_REQUESTED
from .gpu_slots import claim_gpu

EXPECTED = (ValueError, FileNotFoundError, FileExistsError, RuntimeError)


@contextlib.contextmanager
def run_step(log_path: str | Path, threads: int = 1, gpu: int = 0):
    """Send stdout, stderr and logging to `log_path` for the block, warnings to the terminal too;
    report a failure in the log (with its traceback) and on the terminal (its message), then exit
    with status 1. `gpu` is the job's gpu resource: what it asked the scheduler for; where it is
    above 0 and the machine has several GPUs, the block gets one that no other job holds."""
    torch.set_num_threads(max(1, int(threads)))
    os.environ[GPU_REQUESTED] = str(int(bool(gpu)))
    terminal = sys.stderr
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1, encoding="utf-8") as log:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=log, force=True
        )
        warnings = logging.StreamHandler(terminal)
        warnings.setLevel(logging.WARNING)
        warnings.setFormatter(logging.Formatter(f"warning ({log_path}): %(message)s"))
        logging.getLogger().addHandler(warnings)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), claim_gpu(int(gpu)):
                yield
        except BaseException as exc:
            traceback.print_exception(exc, file=log)
            reason = str(exc) if isinstance(exc, EXPECTED) else f"{type(exc).__name__}: {exc}"
            print(f"error: {reason}\n(full log: {log_path})", file=terminal)
            raise SystemExit(1) from None
