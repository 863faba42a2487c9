import re

import pandas as pd
import pytest

from diffaug.layouts import slice_file_name
from diffaug.splits import LowDataError, make_split, split_names

PROTOCOL = {"kind": "kfold", "test_folds": [1, 2], "test_fraction": 0.1, "val_fraction": 0.3, "seed": 0}


def _fsids(manifest, ids):
    return set(manifest.set_index("id").loc[sorted(ids), "recording"])


def test_split_names():
    assert split_names(PROTOCOL) == ["fold1", "fold2"]
    assert split_names({**PROTOCOL, "kind": "random_split"}) == ["random"]


@pytest.mark.parametrize("name", ["fold1", "fold2", "random"])
def test_parts_are_disjoint_and_complete(manifest, name):
    split = make_split(manifest, name, PROTOCOL)
    train, val, test = (set(split[k]) for k in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(manifest["id"])
    assert val, "validation clips are needed to choose the epoch"
    # validation is drawn by whole recordings: no recording feeds both training and validation
    assert not (_fsids(manifest, train) & _fsids(manifest, val))


def test_fold_split_tests_exactly_that_fold_and_no_recording_leaks(manifest):
    split = make_split(manifest, "fold2", PROTOCOL)
    assert set(split["test"]) == set(manifest.loc[manifest["fold"] == 2, "id"])
    assert not (_fsids(manifest, split["train"] + split["val"]) & _fsids(manifest, split["test"]))


def test_random_split_holds_out_the_fraction_and_is_seeded(manifest):
    a = make_split(manifest, "random", {**PROTOCOL, "test_fraction": 0.25})
    b = make_split(manifest, "random", {**PROTOCOL, "test_fraction": 0.25})
    c = make_split(manifest, "random", {**PROTOCOL, "test_fraction": 0.25, "seed": 1})
    assert len(a["test"]) == round(0.25 * len(manifest))
    assert a == b and a["test"] != c["test"]


def test_random_split_by_recording_keeps_test_recordings_out_of_training(manifest):
    protocol = {**PROTOCOL, "kind": "random_split", "test_fraction": 0.25}
    by_clip = make_split(manifest, "random", protocol)
    assert _fsids(manifest, by_clip["test"]) & _fsids(manifest, by_clip["train"])  # why it is labelled so
    split = make_split(manifest, "random", {**protocol, "group_by_recording": True})
    train, val, test = (split[k] for k in ("train", "val", "test"))
    assert not _fsids(manifest, test) & _fsids(manifest, train + val)
    assert set(train) | set(val) | set(test) == set(manifest["id"])
    assert round(0.25 * len(manifest)) <= len(test) < round(0.25 * len(manifest)) + 2  # recordings of 2 clips


@pytest.mark.parametrize("name", ["fold1", "fold1-n10"])
def test_judge_halves_split_the_training_recordings_in_two(name):
    manifest = _crafted(UNEVEN)
    split = make_split(manifest, name, {**PROTOCOL, "val_fraction": 0.15})
    halves = split["judge_halves"]
    assert sorted(halves[0] + halves[1]) == split["train"]
    clips = manifest.set_index("id")
    assert not set(clips.loc[halves[0], "recording"]) & set(clips.loc[halves[1], "recording"])  # by whole recordings
    for class_name in UNEVEN:  # every class in both halves, as even in clips as its recordings allow
        sizes = [int((clips.loc[half, "class"] == class_name).sum()) for half in halves]
        largest = clips.loc[split["train"]].query("`class` == @class_name").groupby("recording").size().max()
        assert min(sizes) > 0 and abs(sizes[0] - sizes[1]) <= largest


def test_a_fold_without_clips_is_an_error(manifest):
    with pytest.raises(ValueError, match="no clip of the dataset is in fold 9"):
        make_split(manifest, "fold9", PROTOCOL)


def _crafted(train_sizes: dict[str, list[int]], test_size: int = 3) -> pd.DataFrame:
    """A manifest with recordings of the given sizes (clips) per class in fold 2, one test recording
    per class in fold 1."""
    rows = []
    for class_id, (class_name, sizes) in enumerate(train_sizes.items()):
        for index, size in enumerate([*sizes, test_size]):
            fs_id, fold = 1000 * (class_id + 1) + index, 2 if index < len(sizes) else 1
            row = {"recording": fs_id, "fold": fold, "class": class_name, "classID": class_id}
            rows += [{"id": slice_file_name(fs_id, class_id, i), **row} for i in range(size)]
    return pd.DataFrame(rows)


UNEVEN = {"dog_bark": [30, 9, 8, 7, 6, 5, 4, 3, 3], "siren": [12, 12, 12, 12, 12, 12], "drilling": [4, 9, 25, 2, 8, 1]}


def test_low_data_names_and_test_part(manifest):
    protocol = {**PROTOCOL, "train_per_class": [2, None]}
    assert split_names(protocol) == ["fold1-n2", "fold2-n2", "fold1", "fold2"]
    full, low = make_split(manifest, "fold1", protocol), make_split(manifest, "fold1-n2", protocol)
    assert low["test"] == full["test"] and low["train_per_class"] == 2
    assert full["cut_recordings"] == [] and make_split(manifest, "fold1-n2", protocol) == low


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("clips_per_class", "val_fraction"), [(20, 0.15), (25, 0.3), (30, 0.15)])
def test_low_data_keeps_exactly_n_training_clips_per_class(seed, clips_per_class, val_fraction):
    manifest = _crafted(UNEVEN)
    protocol = {**PROTOCOL, "seed": seed, "val_fraction": val_fraction}
    split = make_split(manifest, f"fold1-n{clips_per_class}", protocol)
    clips = manifest.set_index("id")
    train, val, test = (clips.loc[split[part]] for part in ("train", "val", "test"))
    assert (train.groupby("class").size() == clips_per_class).all() and train["class"].nunique() == len(UNEVEN)
    assert (train.groupby("class")["recording"].nunique() >= 4).all(), "two recordings in each judge's half"
    assert not (set(train["recording"]) & set(val["recording"]) or set(train["recording"]) & set(test["recording"]))
    assert not set(val["recording"]) & set(test["recording"])
    target = round(clips_per_class * val_fraction / (1 - val_fraction))
    used = set(train["recording"])
    for class_name, group in val.groupby("class"):
        left = manifest[(manifest["class"] == class_name) & (manifest["fold"] == 2) & ~manifest["recording"].isin(used)]
        assert len(group) >= min(target, len(left)), "enough validation clips, or every recording left"
    assert val["class"].nunique() == len(UNEVEN), "at least one validation recording per class"
    assert manifest.loc[manifest["recording"].isin(val["recording"]), "id"].isin(split["val"]).all(), "whole recordings"
    # a cut recording keeps only part of its clips for training, and the rest for nothing
    for cut in split["cut_recordings"]:
        recording = clips[clips["recording"] == cut["recording"]]
        assert len(recording) == cut["of"] > cut["kept"] == recording.index.isin(split["train"]).sum() > 0
        assert not recording.index.isin(split["val"]).any()
    # no recording gives more than a quarter of a class's clips (rounded up)
    assert train.groupby(["class", "recording"]).size().max() <= -(-clips_per_class // 4)
    assert split == make_split(manifest, f"fold1-n{clips_per_class}", protocol)


@pytest.mark.parametrize("seed", range(6))
def test_low_data_settings_are_nested(seed):
    manifest = _crafted(UNEVEN)
    protocol = {**PROTOCOL, "seed": seed, "val_fraction": 0.15}
    clips = manifest.set_index("id")
    splits = [make_split(manifest, f"fold1-n{n}", protocol) for n in (4, 8, 12, 20, 24)]
    for small, large in zip(splits, splits[1:]):
        # a class that had to hold a recording back out of order (listed so) is the one exception
        held = {h["class"] for split in (small, large) for h in split.get("held_back_recordings", [])}
        nested = [clips.loc[split["train"]] for split in (small, large)]
        nested = [part.index[~part["class"].isin(held)] for part in nested]
        assert set(nested[0]) < set(nested[1]) and len(held) < len(UNEVEN)
    assert make_split(manifest, "fold1-n20", protocol)["test"] == make_split(manifest, "fold1", protocol)["test"]


def test_low_data_holds_a_recording_back_for_validation_when_the_walk_leaves_none():
    manifest = _crafted({"dog_bark": [1, 1, 1, 1, 3]})  # 1, 1, 1, 1 and 1 of 3 would leave no recording
    held = []
    for seed in range(8):
        split = make_split(manifest, "fold1-n5", {**PROTOCOL, "seed": seed})
        assert len(split["train"]) == 5 and split["val"]
        held += split.get("held_back_recordings", [])
    assert held and {h["class"] for h in held} == {"dog_bark"}


def test_low_data_takes_at_most_a_quarter_of_n_from_a_recording():
    manifest = _crafted({"dog_bark": [6, 6, 6, 6, 6], "siren": [3, 3, 3, 3, 3]})
    split = make_split(manifest, "fold1-n12", PROTOCOL)
    train = manifest.set_index("id").loc[split["train"]]
    assert train.groupby("class")["recording"].nunique().to_dict() == {"dog_bark": 4, "siren": 4}
    # dog_bark's four recordings give 3 of their 6 clips each; siren's give all 3
    assert sorted((cut["class"], cut["kept"], cut["of"]) for cut in split["cut_recordings"]) == [("dog_bark", 3, 6)] * 4


@pytest.mark.parametrize("seed", range(4))
def test_a_low_data_class_of_long_recordings_gives_each_judge_half_two_recordings_to_pair(seed):
    manifest = _crafted({"jackhammer": [40, 35, 30, 30, 30, 25], "siren": [26, 26, 26, 26, 4]})
    split = make_split(manifest, "fold1-n50", {**PROTOCOL, "seed": seed})
    clips = manifest.set_index("id")
    for half in split["judge_halves"]:
        assert (clips.loc[half].groupby("class")["recording"].nunique() >= 2).all()


LOWER = "lower train_per_class"


@pytest.mark.parametrize(
    ("sizes", "numbers", "advice"),
    [
        (
            [10, 1],
            "its 11 clips outside the test part come from 2 recording(s) of 10, 1 clips",
            "lower train_per_class",
        ),
        (
            [2, 2, 2],
            "its 6 clips outside the test part come from 3 recording(s) of 2, 2, 2 clips",
            "lower train_per_class",
        ),
        (
            [1, 1, 1],
            "its 3 clips outside the test part come from 3 recording(s) of 1, 1, 1 clips",
            "lower train_per_class, or set protocol.short_classes: keep_all to train such a class on all it has",
        ),
    ],
)
def test_low_data_refuses_a_class_that_cannot_supply_n(sizes, numbers, advice):
    manifest = _crafted({"siren": [3, 3, 3, 3], "dog_bark": sizes})
    message = (
        "split fold1-n5: class dog_bark cannot supply 5 training clips, at most a quarter of them (rounded up) "
        f"from one recording, plus one more recording for validation: {numbers}; {advice}"
    )
    with pytest.raises(LowDataError, match=re.escape(message) + "$"):
        make_split(manifest, "fold1-n5", PROTOCOL)


def test_keep_all_trains_a_short_class_on_all_but_its_validation_recordings():
    manifest = _crafted({"siren": [3, 3, 3, 3, 3], "dog_bark": [2, 2, 2, 2, 2]})
    protocol = {**PROTOCOL, "short_classes": "keep_all"}  # val_fraction 0.3: 2 of dog_bark's 5 recordings
    split = make_split(manifest, "fold1-n11", protocol)  # dog_bark has 10 clips
    clips = manifest.set_index("id")
    train, val = clips.loc[split["train"]], clips.loc[split["val"]]
    assert train.groupby("class").size().to_dict() == {"siren": 11, "dog_bark": 6}
    assert split["short_classes"] == [{"class": "dog_bark", "kept": 6}]
    # the recordings held back are exactly its validation: every dog_bark clip trains or validates
    dog_bark = clips[clips["class"] == "dog_bark"]
    assert set(dog_bark.index) - set(split["test"]) == set(train.index[train["class"] == "dog_bark"]) | set(
        val.index[val["class"] == "dog_bark"]
    )
    assert val[val["class"] == "dog_bark"]["recording"].nunique() == 2
    assert not set(train["recording"]) & set(val["recording"])
    assert "short_classes" not in make_split(manifest, "fold1-n4", protocol)  # only when a class is short


def test_keep_all_applies_only_to_classes_with_fewer_than_n_clips():
    protocol = {**PROTOCOL, "short_classes": "keep_all"}
    big = make_split(_crafted({"dog_bark": [60, 60, 60, 60, 60]}), "fold1-n50", protocol)
    assert len(big["train"]) == 50 and "short_classes" not in big  # 13 + 13 + 13 + 11 from four recordings
    with pytest.raises(LowDataError, match="; lower train_per_class$"):  # 10 clips, but no recording left over
        make_split(_crafted({"dog_bark": [2, 2, 2, 2, 2]}), "fold1-n9", protocol)
    with pytest.raises(LowDataError, match=r"keep_all needs three recordings"):
        make_split(_crafted({"dog_bark": [9, 9]}), "fold1-n20", protocol)


def test_bad_split_names_are_refused(manifest):
    with pytest.raises(ValueError, match="unknown split name"):
        make_split(manifest, "fold1-nx", PROTOCOL)
