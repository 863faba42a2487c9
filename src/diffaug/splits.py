"""Train/validation/test splits: the published study's random 90:10 and the official folds.

The validation part, used to choose the epoch, is always drawn from the training side by
recording (fsID), so no recording feeds both training and epoch selection. A low-data split keeps
exactly N training clips per class and draws its validation recordings from the ones left over.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .config import with_defaults


def split_names(protocol: dict) -> list[str]:
    """Split names that a protocol section defines: "random" or "fold<k>", with "-n<N>" for each
    low-data setting of N labelled clips per class."""
    protocol = with_defaults("protocol", protocol)
    bases = ["random"] if protocol["kind"] == "random_split" else [f"fold{f}" for f in protocol["test_folds"]]
    sizes = protocol["train_per_class"] or [None]
    return [base if n is None else f"{base}-n{n}" for n in sizes for base in bases]


def parse_split_name(name: str) -> tuple[str, int | None]:
    """("fold3", 50) for "fold3-n50"; ("random", None) for "random"."""
    base, _, n = name.partition("-n")
    if not (base == "random" or (base.startswith("fold") and base[4:].isdigit())) or (n and not n.isdigit()):
        raise ValueError(
            f"unknown split name {name!r}: expected 'random' or 'fold1'..'fold10', optionally with '-n<N>'"
        )
    return base, int(n) if n else None


class LowDataError(ValueError):
    """A class whose training side cannot supply a low-data split's N clips."""


def _take_recordings(sizes: pd.Series, per_class: int) -> tuple[list, tuple | None] | None:
    """(whole recordings, (cut recording, clips kept) or None) that make exactly `per_class` clips
    from at least two recordings, walking `sizes` (clips per recording) in its order; None if none do.

    A whole recording is taken while it fits and is smaller than `per_class` (no single recording
    makes up a class); only if a full pass falls short is the first skipped recording cut to fill up.
    """
    whole, skipped, count = [], [], 0
    for recording, size in sizes.items():
        if count == per_class:
            break
        if size < per_class and count + size <= per_class:
            whole.append(recording)
            count += size
        else:
            skipped.append(recording)
    if count == per_class:
        return whole, None
    if not whole or not skipped:
        return None
    return whole, (skipped[0], per_class - count)


def _keep_labelled(
    train: pd.DataFrame, name: str, per_class: int, rng: np.random.Generator, protocol: dict
) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    """(clips, cut recordings, short classes): exactly `per_class` clips per class from at least two
    recordings, leaving at least one more of the class's recordings for validation.

    Whole recordings are taken in a seeded random order; one recording is cut only when whole ones
    cannot make `per_class`. A class that cannot supply them raises LowDataError naming the split and
    the class, or, with `protocol["short_classes"]` keep_all, keeps every recording but its
    validation ones (`val_fraction` of them, at least one) and is listed as short.
    """
    kept, cuts, short = [], [], []
    for class_name, clips in train.groupby("class", sort=True):
        sizes = clips.groupby("fsID").size()
        order = sizes.loc[rng.permutation(sizes.index.to_numpy())]
        taken = _take_recordings(order, per_class)
        if taken is not None and len(taken[0]) + (taken[1] is not None) == len(order):
            taken = None  # none left for validation: hold back the first recording whose absence still works
            for held_back in order.index:
                if (taken := _take_recordings(order.drop(held_back), per_class)) is not None:
                    break
        if taken is None and protocol["short_classes"] == "keep_all" and len(order) >= 3:
            held_back = min(len(order) - 2, max(1, math.ceil(protocol["val_fraction"] * len(order))))
            taken = list(order.index[held_back:]), None
            short.append({"class": class_name, "kept": int(order.iloc[held_back:].sum())})
        if taken is None:
            listed = ", ".join(map(str, sorted(sizes, reverse=True)[:20])) + (", ..." if len(sizes) > 20 else "")
            raise LowDataError(
                f"split {name}: class {class_name} cannot supply {per_class} training clips from at least two "
                f"recordings plus one more recording for validation: its {len(clips)} clips outside the test "
                f"part come from {len(sizes)} recording(s) of {listed} clips; lower train_per_class, or set "
                "protocol.short_classes: keep_all to train such a class on all it has"
            )
        whole, cut = taken
        kept.append(clips[clips["fsID"].isin(whole)])
        if cut is not None:
            recording, n_kept = cut
            kept.append(clips[clips["fsID"] == recording].sort_values("id").head(n_kept))
            cuts.append({"class": class_name, "fsID": int(recording), "kept": int(n_kept), "of": int(sizes[recording])})
    return pd.concat(kept), cuts, short


def _low_data_validation_ids(
    train: pd.DataFrame, labelled: pd.DataFrame, per_class: int, fraction: float, rng: np.random.Generator
) -> set[str]:
    """Whole recordings, per class, that the labelled clips do not touch (nor the rest of a cut one),
    taken in a seeded random order until the class has `per_class * fraction / (1 - fraction)` clips;
    at least one recording."""
    target = round(per_class * fraction / (1 - fraction))
    used = set(labelled["fsID"])
    chosen = []
    for _, clips in train[~train["fsID"].isin(used)].groupby("class", sort=True):
        sizes = clips.groupby("fsID").size()
        count = 0
        for recording in rng.permutation(sizes.index.to_numpy()):
            chosen.append(recording)
            count += sizes[recording]
            if count >= target:
                break
    return set(train.loc[train["fsID"].isin(chosen), "id"])


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


def _random_test_part(
    manifest: pd.DataFrame, fraction: float, by_recording: bool, rng: np.random.Generator
) -> np.ndarray:
    """Which clips a random split tests on: `fraction` of them drawn one by one, as the published
    study did (a test clip's recording then also trains), or whole recordings (fsID) in a seeded
    order until they hold that many clips."""
    n_test = round(fraction * len(manifest))
    if not by_recording:
        is_test = np.zeros(len(manifest), bool)
        is_test[rng.permutation(len(manifest))[:n_test]] = True
        return is_test
    sizes = manifest.groupby("fsID").size()
    order = sizes.loc[rng.permutation(sizes.index.to_numpy())]
    taken = order.index[: int(np.searchsorted(order.cumsum().to_numpy(), n_test)) + 1]
    return manifest["fsID"].isin(taken).to_numpy()


def make_split(manifest: pd.DataFrame, name: str, protocol: dict) -> dict:
    """Ids of the train, val and test clips of one split, deterministic for the protocol's seed.

    With N clips per class ("-n<N>"), training keeps exactly N per class by whole recordings (at
    most one recording per class cut, listed under "cut_recordings"); validation takes other whole
    recordings of the class until it is at least `val_fraction` of training plus validation.
    Raises LowDataError when a class cannot supply that, unless `short_classes` is keep_all: such a
    class then keeps all it has but its validation recordings, listed under "short_classes".
    """
    protocol = with_defaults("protocol", protocol)
    base, per_class = parse_split_name(name)
    rng = np.random.default_rng([protocol["seed"], sum(map(ord, base))])
    if base == "random":
        is_test = _random_test_part(manifest, protocol["test_fraction"], protocol["group_by_recording"], rng)
    else:
        fold = int(base[4:])
        if fold not in set(manifest["fold"]):
            raise ValueError(f"split {name}: no clip of the dataset is in fold {fold}")
        is_test = (manifest["fold"] == fold).to_numpy()
    train_side, cuts, short = manifest[~is_test], [], []
    if per_class is None:
        val = _validation_ids(train_side, protocol["val_fraction"], rng)
        train = set(train_side["id"]) - val
    else:
        labelled, cuts, short = _keep_labelled(
            train_side, name, per_class, np.random.default_rng([protocol["seed"], per_class]), protocol
        )
        val = _low_data_validation_ids(train_side, labelled, per_class, protocol["val_fraction"], rng)
        train = set(labelled["id"])
    return {
        "split": name,
        "protocol": protocol["kind"],
        "train_per_class": per_class,
        "train": sorted(train),
        "val": sorted(val),
        "test": sorted(manifest.loc[is_test, "id"]),
        "cut_recordings": cuts,
        **({"short_classes": short} if short else {}),
    }


def save_split(split: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(split, indent=1) + "\n")


def load_split(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
