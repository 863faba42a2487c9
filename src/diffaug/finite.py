"""Numbers that must be finite: features, losses and weights, refused with where they went wrong."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch


def non_finite(named: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """The names of the tensors that hold NaN or infinity (one device sync for them all)."""
    named = [(name, t) for name, t in named if t.is_floating_point()]
    if not named:
        return []
    finite = torch.stack([t.isfinite().all() for _, t in named]).cpu().tolist()
    return [name for (name, _), ok in zip(named, finite) if not ok]


def listed(names: Sequence[str], most: int = 5) -> str:
    return ", ".join(map(str, names[:most])) + (", ..." if len(names) > most else "")


def require_finite_rows(x: torch.Tensor, ids: Sequence[str], where) -> None:
    """Refuse a batch of features (one row per clip, named by `ids`) holding NaN or infinity, naming the clips."""
    bad = (~x.isfinite()).flatten(1).any(1).nonzero().flatten().tolist()
    if bad:
        raise ValueError(
            f"{where}: features of {len(bad)} clip(s) are NaN or infinite: {listed([ids[i] for i in bad])}"
        )


def require_finite_training(where: str, module: torch.nn.Module, loss: float | None = None) -> None:
    """Stop a training run whose loss or weights hold NaN or infinity, naming `where` (the run and its
    epoch or step) and the first such weights: training on from there only spreads them."""
    if loss is not None and not math.isfinite(loss):
        raise ValueError(
            f"{where}: the loss is {loss}; the inputs hold extreme values or the learning rate is too high"
        )
    if bad := non_finite(module.state_dict().items()):
        raise ValueError(
            f"{where}: weights are NaN or infinite ({listed(bad, 3)}); "
            "the learning rate is too high for this network or the inputs hold extreme values"
        )
