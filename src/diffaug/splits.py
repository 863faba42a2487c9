"""Train/validation/test splits: the seed's random 90:10 and the official folds.

The validation part, used to choose the epoch, is always drawn from the training side by
recording (fsID), so no recording feeds both training and epoch selection.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd


def split_names(protocol: dict) -> list[str]:
    """Split names that a protocol section defines: ["random"] or ["fold1", ...]."""
    if protocol["kind"] == "random_split":
        return ["random"]
    return [f"fold{f}" for f in protocol["test_folds"]]


def _validation_ids(train: pd.DataFrame, fraction: float, rng: np.random.Generator) -> set[str]:
    """Whole recordings, per class, taking about `fraction` of each class's recordings."""
    chosen = set()
    majority = train.groupby("fsID")["class"].agg(lambda s: s.mode().iloc[0])
    for _, recordings in majority.groupby(majority):
        ids = np.sort(recordings.index.to_numpy())
        if len(ids) < 2:
            continue  # a single recording stays in training rather than leaving its class untrained
        n_val = max(1, math.ceil(fraction * len(ids))) if fraction > 0 else 0
        chosen.update(rng.choice(ids, size=min(n_val, len(ids) - 1), replace=False).tolist())
    return set(train.loc[train["fsID"].isin(chosen), "id"])


def make_split(manifest: pd.DataFrame, name: str, protocol: dict) -> dict:
    """Ids of the train, val and test clips of one split, deterministic for the protocol's seed."""
    rng = np.random.default_rng([protocol["seed"], sum(map(ord, name))])
    if name == "random":
        order = rng.permutation(len(manifest))
        n_test = round(protocol["test_fraction"] * len(manifest))
        is_test = np.zeros(len(manifest), bool)
        is_test[order[:n_test]] = True
    elif name.startswith("fold"):
        fold = int(name[4:])
        if fold not in set(manifest["fold"]):
            raise ValueError(f"split {name}: no clip of the dataset is in fold {fold}")
        is_test = (manifest["fold"] == fold).to_numpy()
    else:
        raise ValueError(f"unknown split name {name!r}: expected 'random' or 'fold1'..'fold10'")
    train_side = manifest[~is_test]
    val = _validation_ids(train_side, protocol["val_fraction"], rng)
    return {
        "split": name,
        "protocol": protocol["kind"],
        "train": sorted(set(train_side["id"]) - val),
        "val": sorted(val),
        "test": sorted(manifest.loc[is_test, "id"]),
    }


def save_split(split: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(split, indent=1) + "\n")


def load_split(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
