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
    """Split names that a protocol section defines: "random" or "fold<k>", with "-n<N>" for each
    low-data setting of N labelled clips per class."""
    bases = ["random"] if protocol["kind"] == "random_split" else [f"fold{f}" for f in protocol["test_folds"]]
    sizes = protocol.get("train_per_class") or [None]
    return [base if n is None else f"{base}-n{n}" for n in sizes for base in bases]


def parse_split_name(name: str) -> tuple[str, int | None]:
    """("fold3", 50) for "fold3-n50"; ("random", None) for "random"."""
    base, _, n = name.partition("-n")
    if not (base == "random" or (base.startswith("fold") and base[4:].isdigit())) or (n and not n.isdigit()):
        raise ValueError(
            f"unknown split name {name!r}: expected 'random' or 'fold1'..'fold10', optionally with '-n<N>'"
        )
    return base, int(n) if n else None


def _keep_labelled(train: pd.DataFrame, per_class: int, rng: np.random.Generator) -> pd.DataFrame:
    """N clips per class, taken whole recording by whole recording in a seeded random order."""
    kept = []
    for _, clips in train.groupby("class", sort=True):
        recordings = rng.permutation(np.sort(clips["fsID"].unique()))
        order = pd.Categorical(clips["fsID"], categories=recordings, ordered=True)
        kept.append(clips.assign(_order=order).sort_values(["_order", "id"]).head(per_class).drop(columns="_order"))
    return pd.concat(kept)


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
    base, per_class = parse_split_name(name)
    rng = np.random.default_rng([protocol["seed"], sum(map(ord, base))])
    if base == "random":
        order = rng.permutation(len(manifest))
        n_test = round(protocol["test_fraction"] * len(manifest))
        is_test = np.zeros(len(manifest), bool)
        is_test[order[:n_test]] = True
    else:
        fold = int(base[4:])
        if fold not in set(manifest["fold"]):
            raise ValueError(f"split {name}: no clip of the dataset is in fold {fold}")
        is_test = (manifest["fold"] == fold).to_numpy()
    train_side = manifest[~is_test]
    if per_class is not None:  # the low-data setting: before validation, so every arm sees the same N
        train_side = _keep_labelled(train_side, per_class, np.random.default_rng([protocol["seed"], per_class]))
    val = _validation_ids(train_side, protocol["val_fraction"], rng)
    return {
        "split": name,
        "protocol": protocol["kind"],
        "train_per_class": per_class,
        "train": sorted(set(train_side["id"]) - val),
        "val": sorted(val),
        "test": sorted(manifest.loc[is_test, "id"]),
    }


def save_split(split: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(split, indent=1) + "\n")


def load_split(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
