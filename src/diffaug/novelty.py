"""How new a clip is: its distance to the nearest real training clip of its split, in the classifier's
input features and in a judge's penultimate layer. A generator that copies its training clips makes
clips far nearer to them than unseen real clips of the class are."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from .classifier import probabilities
from .confidence import judge_rows

DISTANCE_COLUMNS = ["feature_distance", "judge_distance"]
"""A clip's distance to the nearest real training clip: in the classifier's input features (in dB),
and in the penultimate layer of the judge that scores it."""


def feature_vectors(x: torch.Tensor, in_db: bool) -> torch.Tensor:
    """(clips, values): classifier inputs flattened, in dB (10 log10 of the power, floored at -100 dB)
    unless they are already (`in_db`): distances in power would hear only the loudest bins."""
    flat = x.flatten(1).float()
    return flat if in_db else 10 * torch.log10(flat.clamp_min(1e-10))


def nearest_distances(
    queries: torch.Tensor, references: torch.Tensor, exclude: Sequence[int | None] | None = None, chunk: int = 512
) -> torch.Tensor:
    """Each query row's Euclidean distance to the nearest reference row (both float64), leaving out the
    reference row `exclude[i]` for query i where given (a training clip's distance to the nearest other
    one); NaN where no reference is left. In chunks of queries, so memory is chunk x references."""
    found = []
    for start in range(0, len(queries), chunk):
        block = torch.cdist(  # exact: a copy is at 0, not at rounding noise
            queries[start : start + chunk].double(), references, compute_mode="donot_use_mm_for_euclid_dist"
        )
        for i, row in enumerate(exclude[start : start + chunk] if exclude is not None else []):
            if row is not None:
                block[i, row] = float("inf")
        nearest = block.min(1).values if block.shape[1] else torch.full((len(block),), float("inf"))
        found.append(nearest.masked_fill(nearest.isinf(), float("nan")).float())
    return torch.cat(found) if found else torch.empty(0)


def penultimate(model: nn.Module, x: torch.Tensor, precision: str, device: str) -> torch.Tensor:
    """(clips, units): a classifier's activations that enter its output layer, caught on their way while
    it labels `x` as a judge does (classifier.probabilities: its device, precision and batches); a
    network that labels a clip by its patches gives the mean over them."""
    caught = []
    hook = model.head[-1].register_forward_pre_hook(lambda _, inputs: caught.append(inputs[0].float().cpu()))
    try:
        probabilities(model, x, precision, device)
    finally:
        hook.remove()
    if not caught:
        return torch.empty(0, model.head[-1].in_features)
    units = torch.cat(caught)
    return units.view(len(x), -1, units.shape[-1]).mean(1)  # patches of a clip follow each other


class TrainingClips:
    """A split's real training clips as the distances see them: classifier features (feature_vectors)
    and each judge's penultimate layer, computed once for every clip measured against them."""

    def __init__(self, x: torch.Tensor, judges: Sequence[nn.Module], settings, in_db: bool):
        self.judges, self.in_db = judges, in_db
        self.precision, self.device = settings.network.precision, settings.device
        self.features = feature_vectors(x, in_db).double()
        self.layers = [penultimate(judge, x, self.precision, self.device).double() for judge in judges]

    def distances(
        self, x: torch.Tensor, judge_of: Sequence[int], exclude: Sequence[int | None] | None = None
    ) -> pd.DataFrame:
        """DISTANCE_COLUMNS of each clip of `x` to the nearest training clip: in features, and in the
        layer of the judge (an index of `judges`) that `judge_of` names for it; `exclude` as
        nearest_distances takes it."""
        features = nearest_distances(feature_vectors(x, self.in_db), self.features, exclude)
        judged = torch.full((len(x),), float("nan"))
        for index, rows in judge_rows(judge_of, count=len(self.judges)):
            layer = penultimate(self.judges[index], x[rows], self.precision, self.device)
            skipped = [exclude[i] for i in rows.tolist()] if exclude is not None else None
            judged[rows] = nearest_distances(layer, self.layers[index], skipped)
        return pd.DataFrame({"feature_distance": features.tolist(), "judge_distance": judged.tolist()})
