"""Training checkpoints in safetensors, so that a killed job resumes where it stopped and ends with
exactly the weights an uninterrupted run gives."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch

from .files import load_tensors, save_tensors

log = logging.getLogger(__name__)


def fingerprint(*parts) -> str:
    """A short hash of settings and data that a checkpoint is only valid for."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            digest.update(part.detach().cpu().contiguous().numpy().tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


class Checkpoint:
    """One file beside a job's output holding named tensors and JSON state."""

    def __init__(self, path: str | Path, key: str):
        self.path, self.key = Path(path), key

    def load(self) -> tuple[dict[str, torch.Tensor], dict] | None:
        """The saved state, or None when there is none or it belongs to other settings or data."""
        if not self.path.is_file():
            return None
        try:
            tensors, meta = load_tensors(self.path)
        except ValueError as error:
            log.warning("ignoring unreadable checkpoint: %s", error)
            return None
        if meta.get("key") != self.key:
            log.info("ignoring %s: it was made with other settings or data", self.path)
            return None
        return tensors, meta["state"]

    def save(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        save_tensors(self.path, tensors, {"key": self.key, "state": state})

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def with_prefix(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


def strip_prefix(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state as flat tensors plus its JSON-able parameter groups."""
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{name}": torch.as_tensor(value)
        for index, slots in state["state"].items()
        for name, value in slots.items()
    }
    return tensors, {"param_groups": state["param_groups"]}


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    slots: dict[int, dict] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        slots.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
