import pytest

from diffaug.splits import make_split, split_names

PROTOCOL = {"kind": "kfold", "test_folds": [1, 2], "test_fraction": 0.1, "val_fraction": 0.3, "seed": 0}


def _fsids(manifest, ids):
    return set(manifest.set_index("id").loc[sorted(ids), "fsID"])


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


def test_a_fold_without_clips_is_an_error(manifest):
    with pytest.raises(ValueError, match="no clip of the dataset is in fold 9"):
        make_split(manifest, "fold9", PROTOCOL)


def test_low_data_keeps_n_clips_per_class_by_recording(manifest):
    protocol = {**PROTOCOL, "train_per_class": [3, None]}
    assert split_names(protocol) == ["fold1-n3", "fold2-n3", "fold1", "fold2"]
    full, low = make_split(manifest, "fold1", protocol), make_split(manifest, "fold1-n3", protocol)
    assert low["test"] == full["test"] and low["train_per_class"] == 3
    labelled = manifest.set_index("id").loc[low["train"] + low["val"]]
    assert (labelled.groupby("class").size() == 3).all()
    # whole recordings first: 2 clips per recording, so 3 clips span exactly 2 recordings
    assert (labelled.groupby("class")["fsID"].nunique() == 2).all()
    assert make_split(manifest, "fold1-n3", protocol) == low


def test_bad_split_names_are_refused(manifest):
    with pytest.raises(ValueError, match="unknown split name"):
        make_split(manifest, "fold1-nx", PROTOCOL)
