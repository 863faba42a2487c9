"""Pairs of same-class clips from different recordings: what interpolation, mel averaging and the
round trip draw on."""

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


PAIR_COLUMNS = ("pair", "class", "source_a", "source_b", "fsID_a", "fsID_b")


def replicate_seed(seed: int, replicate: int) -> int:
    """The seed of one generated set: `seed` itself for the first, an independent stream for the others."""
    return seed if replicate == 0 else int(np.random.SeedSequence([seed, replicate]).generate_state(1)[0])


def pair_id(class_name: str, index: int) -> str:
    """The id of a class's `index`-th pair, which names its generated clip too: <class>-<index>."""
    return f"{class_name}-{index:05d}"


def pairs_table(train: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    """`per_class` pairs per class of the training clips, each named by `pair_id`: the one list
    that interpolation, mel averaging and the round trip all draw on."""
    fs_id = train.set_index("id")["fsID"]
    rows = [
        (pair_id(class_name, index), class_name, a, b, fs_id[a], fs_id[b])
        for class_name, clips in train.groupby("class", sort=True)
        for index, (a, b) in enumerate(choose_pairs(clips, per_class, seed))
    ]
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))


def round_trip_sources(pairs: pd.DataFrame) -> dict[str, list[str]]:
    """Per class (in order), the real clips that its pairs draw on, sorted, up to as many as it has
    pairs: the clips that the round trip sends through the mel image."""
    return {
        class_name: sorted(set(chosen["source_a"]) | set(chosen["source_b"]))[: len(chosen)]
        for class_name, chosen in pairs.groupby("class", sort=True)
    }
