"""Train/validation/test splits: the published study's random 90:10 and the official folds.

The validation part, used to choose the epoch, is always drawn from the training side by
recording (recording), so no recording feeds both training and epoch selection. A low-data split keeps
exactly N training clips per class, the clips of a smaller N among those of a larger one, and
draws its validation recordings from the ones left over.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .schema import with_defaults


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
        raise ValueError(f"unknown split name {name!r}: expected 'random' or 'fold<k>', optionally with '-n<N>'")
    return base, int(n) if n else None


def plain(value):
    """A recording id as JSON writes it: numpy numbers as Python ones."""
    return value.item() if hasattr(value, "item") else value


class LowDataError(ValueError):
    """A class whose training side cannot supply a low-data split's N clips."""


def _labelled_recordings(sizes: pd.Series, clips_per_class: int) -> dict | None:
    """{recording: clips it gives}, walking `sizes` (clips per recording, in the class's seeded
    order) until `clips_per_class` clips: each recording gives at most a quarter of them (rounded up), so
    that from N = 10 on each judge's half can pair clips of two recordings; None if the class has
    fewer. The walk does not depend on N beyond where it stops, so the clips of a smaller N lie among
    those of a larger one (nested settings) whenever the cap's share of N does not grow from the
    smaller N to the larger: multiples of 4, and 50, 100, 200, 500 (not 48 with 50)."""
    cap, left, given = math.ceil(clips_per_class / 4), clips_per_class, {}
    for recording, size in sizes.items():
        if left == 0:
            break
        given[recording] = min(size, cap, left)
        left -= given[recording]
    return given if left == 0 else None


def _low_data_class(
    clips: pd.DataFrame, name: str, clips_per_class: int, order: pd.Series, protocol: dict
) -> tuple[list[str], list[str], list[dict], int | None, object]:
    """(training ids, validation ids, cut recordings, clips kept if the class is short, a recording
    held back out of order) of one class of a low-data split; `order` holds its recordings' sizes in
    their seeded order.

    Training takes `_labelled_recordings` (each recording's first clips by id); validation takes the
    recordings it leaves, from the end of the order, until about `val_fraction / (1 - val_fraction)`
    x N clips (at least one recording). Where the walk would leave none, the latest recording whose
    absence still lets it make N is held back for validation, and this class's clips are then not
    nested within a larger N's. With `short_classes: keep_all`, a class with fewer than N clips
    trains on all its recordings but those held back (`val_fraction` of them, at least one), which
    are exactly its validation. Anything else that cannot be made raises LowDataError."""
    class_name = clips["class"].iloc[0]
    given, held_back = _labelled_recordings(order, clips_per_class), None
    if given is not None and len(given) == len(order):  # none left for validation: hold the latest back that can be
        given = None
        for held_back in reversed(order.index):
            if (given := _labelled_recordings(order.drop(held_back), clips_per_class)) is not None:
                break
    left = [recording for recording in order.index if given is None or recording not in given]
    by_recording = {recording: sorted(group["id"]) for recording, group in clips.groupby("recording")}
    if given is not None and len(given) >= 2 and left:
        train = [clip for recording, n in given.items() for clip in by_recording[recording][:n]]
        cuts = [
            {"class": class_name, "recording": plain(recording), "kept": int(n), "of": int(order[recording])}
            for recording, n in given.items()
            if n < order[recording]
        ]
        target, val = round(clips_per_class * protocol["val_fraction"] / (1 - protocol["val_fraction"])), []
        for recording in reversed(left):
            val += by_recording[recording]
            if len(val) >= target:
                break
        return train, val, cuts, None, held_back
    short = len(clips) < clips_per_class
    if short and protocol["short_classes"] == "keep_all" and len(order) >= 3:
        held_back = min(len(order) - 2, max(1, math.ceil(protocol["val_fraction"] * len(order))))
        train = [clip for recording in order.index[:-held_back] for clip in by_recording[recording]]
        val = [clip for recording in order.index[-held_back:] for clip in by_recording[recording]]
        return train, val, [], len(train), None
    raise _short_class_error(name, class_name, clips_per_class, len(clips), order, protocol["short_classes"])


def _short_class_error(
    name: str, class_name: str, clips_per_class: int, clips: int, order: pd.Series, short_classes: str
) -> LowDataError:
    """Why a class of `clips` clips in recordings of the sizes `order` cannot give a low-data split N clips,
    with what to change."""
    listed = ", ".join(map(str, sorted(order, reverse=True)[:20])) + (", ..." if len(order) > 20 else "")
    short, advice = clips < clips_per_class, "lower train_per_class"
    if short and short_classes != "keep_all" and len(order) >= 3:
        advice += ", or set protocol.short_classes: keep_all to train such a class on all it has"
    elif short and len(order) < 3:
        advice += " (short_classes: keep_all needs three recordings: two to train on, one for validation)"
    return LowDataError(
        f"split {name}: class {class_name} cannot supply {clips_per_class} training clips, at most a quarter of them "
        f"(rounded up) from one recording, plus one more recording for validation: its {clips} clips "
        f"outside the test part come from {len(order)} recording(s) of {listed} clips; {advice}"
    )


def _low_data_parts(
    train_side: pd.DataFrame, name: str, clips_per_class: int, rng: np.random.Generator, protocol: dict
) -> tuple[list[str], list[str], list[dict], list[dict], list[dict]]:
    """(training ids, validation ids, cut recordings, short classes, recordings held back out of
    order) of a low-data split: each class by `_low_data_class`, its recordings in an order drawn from
    `rng` that does not depend on N."""
    train, val, cuts, short, held = [], [], [], [], []
    for class_name, clips in train_side.groupby("class", sort=True):
        sizes = clips.groupby("recording").size()
        order = sizes.loc[rng.permutation(sizes.index.to_numpy())]
        class_train, class_val, class_cuts, kept, held_back = _low_data_class(
            clips, name, clips_per_class, order, protocol
        )
        train += class_train
        val += class_val
        cuts += class_cuts
        if kept is not None:
            short.append({"class": class_name, "kept": kept})
        if held_back is not None:
            held.append({"class": class_name, "recording": plain(held_back)})
    return train, val, cuts, short, held


def _validation_ids(train: pd.DataFrame, fraction: float, rng: np.random.Generator) -> set[str]:
    """Whole recordings, per class, taking about `fraction` of each class's recordings."""
    val_recordings = set()
    majority = train.groupby("recording")["class"].agg(lambda s: s.mode().iloc[0])
    for _, recordings in majority.groupby(majority):
        ids = np.sort(recordings.index.to_numpy())
        if len(ids) < 2:
            continue  # a single recording stays in training rather than leaving its class untrained
        n_val = max(1, math.ceil(fraction * len(ids))) if fraction > 0 else 0
        val_recordings.update(rng.choice(ids, size=min(n_val, len(ids) - 1), replace=False).tolist())
    return set(train.loc[train["recording"].isin(val_recordings), "id"])


def _random_test_part(
    manifest: pd.DataFrame, fraction: float, by_recording: bool, rng: np.random.Generator
) -> np.ndarray:
    """Which clips a random split tests on: `fraction` of them drawn one by one, as the published
    study did (a test clip's recording then also trains), or whole recordings (recording) in a seeded
    order until they hold that many clips."""
    n_test = round(fraction * len(manifest))
    if not by_recording:
        is_test = np.zeros(len(manifest), bool)
        is_test[rng.permutation(len(manifest))[:n_test]] = True
        return is_test
    sizes = manifest.groupby("recording").size()
    order = sizes.loc[rng.permutation(sizes.index.to_numpy())]
    taken = order.index[: int(np.searchsorted(order.cumsum().to_numpy(), n_test)) + 1]
    return manifest["recording"].isin(taken).to_numpy()


def judge_halves(train: pd.DataFrame, rng: np.random.Generator) -> list[list[str]]:
    """The training clips in two halves by recording (recording), each class's recordings (by their
    majority class) taken in a seeded order and given to the half that holds fewer of its clips so
    far (of all clips on a tie): a judge trained on one half never heard the other half's recordings."""
    halves = [[], []]
    sizes = train.groupby("recording").size()
    majority = train.groupby("recording")["class"].agg(lambda s: s.mode().iloc[0])
    by_recording = train.groupby("recording")["id"].apply(sorted)
    for _, recordings in majority.groupby(majority, sort=True):
        held = [0, 0]
        for recording in rng.permutation(np.sort(recordings.index.to_numpy())):
            half = min((0, 1), key=lambda h: (held[h], len(halves[h]), h))  # ties: the smaller half overall
            held[half] += sizes[recording]
            halves[half] += by_recording[recording]
    return [sorted(half) for half in halves]


def make_split(manifest: pd.DataFrame, name: str, protocol: dict) -> dict:
    """Ids of the train, val and test clips of one split, deterministic for the protocol's seed.

    With N clips per class ("-n<N>"), training keeps exactly N per class, at most a quarter (rounded up)
    from one recording, nested across N where the cap's share of N does not grow (recordings cut short
    are listed under "cut_recordings"); validation takes other whole recordings of the class until it
    is about `val_fraction` of training plus validation. "judge_halves" splits the training clips in
    two by recording (`judge_halves`) for the judges of generated clips. Raises LowDataError when a
    class cannot supply that, unless `short_classes` is keep_all and the class has fewer than N clips:
    it then keeps all it has but its validation recordings, listed under "short_classes". A class
    whose walk had to hold a recording back for validation is listed under "held_back_recordings"
    (its clips are not nested within a larger N's).
    """
    protocol = with_defaults("protocol", protocol)
    base, clips_per_class = parse_split_name(name)
    rng = np.random.default_rng([protocol["seed"], sum(map(ord, base))])
    if base == "random":
        is_test = _random_test_part(manifest, protocol["test_fraction"], protocol["group_by_recording"], rng)
    else:
        fold = int(base[4:])
        if fold not in set(manifest["fold"]):
            raise ValueError(f"split {name}: no clip of the dataset is in fold {fold}")
        is_test = (manifest["fold"] == fold).to_numpy()
    train_side, cuts, short, held = manifest[~is_test], [], [], []
    if clips_per_class is None:
        val = _validation_ids(train_side, protocol["val_fraction"], rng)
        train = set(train_side["id"]) - val
    else:
        train, val, cuts, short, held = _low_data_parts(train_side, name, clips_per_class, rng, protocol)
    halves = judge_halves(train_side[train_side["id"].isin(set(train))], np.random.default_rng([protocol["seed"], 1]))
    return {
        "split": name,
        "protocol": protocol["kind"],
        "train_per_class": clips_per_class,
        "train": sorted(train),
        "val": sorted(val),
        "test": sorted(manifest.loc[is_test, "id"]),
        "judge_halves": halves,
        "cut_recordings": cuts,
        **({"short_classes": short} if short else {}),
        **({"held_back_recordings": held} if held else {}),
    }


def save_split(split: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(split, indent=1) + "\n")


def load_split(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def halves_of(split: dict) -> list[list[str]]:
    """The split's two judge halves of its training clips (`judge_halves`)."""
    if "judge_halves" not in split:
        raise ValueError(f"split {split['split']} was made before judge halves existed; rerun its split job")
    return split["judge_halves"]


def judge_split(split: dict, half: int) -> dict:
    """The split as the judge of one `half` sees it: that half of the training clips trains and the
    other half is `held_out`."""
    halves = halves_of(split)
    return {**split, "train": halves[half], "held_out": halves[1 - half]}


def clips_in(table: pd.DataFrame, split: dict, part: str = "train") -> pd.DataFrame:
    """The rows of a manifest `table` in one part of a split, in the table's order."""
    return table[table["id"].isin(set(split[part]))]
