"""Running one workflow step: its log file gets the progress bars, the log records and, on
failure, the error; the terminal gets the error's message."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from pathlib import Path

import torch

EXPECTED = (ValueError, FileNotFoundError, FileExistsError, RuntimeError)


@contextlib.contextmanager
def run_step(log_path: str | Path | None, threads: int = 1):
    """Send stdout, stderr and logging to `log_path` for the block; report failures in both places."""
    torch.set_num_threads(max(1, int(threads)))
    terminal = sys.stderr
    if log_path is None:
        handle = None
    else:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handle = open(log_path, "w", buffering=1, encoding="utf-8")
    stream = handle or terminal
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=stream, force=True
    )
    try:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            yield
    except BaseException as exc:
        if handle:
            traceback.print_exception(exc, file=handle)
        reason = str(exc) if isinstance(exc, EXPECTED) else f"{type(exc).__name__}: {exc}"
        print(f"error: {reason}" + (f"\n(full log: {log_path})" if handle else ""), file=terminal)
        if handle:
            handle.close()
        raise SystemExit(1) from None
    if handle:
        handle.close()
