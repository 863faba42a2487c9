"""Pairs of same-class clips from different recordings: what interpolation and mel averaging mix."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd


def count_pairs(clips: pd.DataFrame) -> int:
    """Unordered pairs of clips from different recordings (fsID)."""
    n, same = len(clips), clips["fsID"].value_counts()
    return n * (n - 1) // 2 - int((same * (same - 1) // 2).sum())


def choose_pairs(clips: pd.DataFrame, count: int, seed: int) -> list[tuple[str, str]]:
    """`count` distinct unordered pairs of clips from different recordings (fsID), seeded."""
    ids, recordings = clips["id"].to_numpy(), clips["fsID"].to_numpy()
    order = np.argsort(ids, kind="stable")
    ids, recordings = ids[order], recordings[order]
    n = len(ids)
    available = count_pairs(clips)
    if count > available:
        raise ValueError(f"{count} pairs asked, but only {available} pairs of clips from different recordings exist")
    rng = np.random.default_rng(seed)
    chosen: dict[tuple[int, int], None] = {}
    if count > available // 2:  # dense: enumerate and sample
        every = [(i, j) for i, j in itertools.combinations(range(n), 2) if recordings[i] != recordings[j]]
        picks = rng.choice(len(every), size=count, replace=False)
        return [(ids[every[k][0]], ids[every[k][1]]) for k in picks]
    while len(chosen) < count:
        i, j = sorted(rng.choice(n, size=2, replace=False).tolist())
        if recordings[i] != recordings[j]:
            chosen.setdefault((i, j))
    return [(ids[i], ids[j]) for i, j in chosen]
