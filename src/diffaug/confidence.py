"""How the baseline classifier labels generated clips, and the confidence filter (`generate.filter:
confidence`) that keeps the most class-like share of each class."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch


def class_scores(proba: torch.Tensor, labels: torch.Tensor, ids: list[str], classes: Sequence[str]) -> pd.DataFrame:
    """One row per clip: its intended class, the class it is labelled with and the probability
    (`confidence`) given to the intended one; `proba` is (clips, classes)."""
    return pd.DataFrame(
        {
            "clip": ids,
            "class": [classes[i] for i in labels.tolist()],
            "predicted": [classes[i] for i in proba.argmax(1).tolist()],
            "confidence": proba[torch.arange(len(labels)), labels].tolist(),
        }
    )


def most_confident(scores: pd.DataFrame, keep: float) -> pd.Series:
    """Per row of `scores` (class_scores), whether it is among the `keep` fraction of its class
    (rounded, at least one) with the highest confidence; ties go to the earlier row."""
    rank = scores.groupby("class")["confidence"].rank(ascending=False, method="first")
    size = scores.groupby("class")["clip"].transform("size")
    return rank <= (keep * size).round().clip(lower=1)
