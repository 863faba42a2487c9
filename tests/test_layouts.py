"""Every layout gives the same manifest: ESC-50, a folder per class (with and without a CSV), UrbanSound8K."""

import os
import shutil

import pandas as pd
import pytest
import soundfile as sf
from layout_data import ends_within, esc50_category, tone, write_esc50, write_folders, write_non_utf8_name

from diffaug.dataset import MANIFEST_COLUMNS, DatasetError, build_manifest
from diffaug.layouts import read_esc50, read_folders
from diffaug.splits import make_split

ESC50 = {"layout": "esc50"}
FOLDERS = {"layout": "folders"}


def test_esc50_in_its_own_layout_at_44_1_khz_stereo(tmp_path):
    meta = write_esc50(tmp_path, classes=3, recordings_per_fold=1, seconds=5.0, channels=2)
    (tmp_path / "audio" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "audio" / "notes.txt").write_text("notes\n")
    manifest, rejected = build_manifest(tmp_path, max_seconds=5.0, layout=ESC50)
    assert tuple(manifest.columns) == MANIFEST_COLUMNS and rejected.empty and len(manifest) == len(meta)
    by_name = manifest.set_index("id")
    listed = meta.set_index("filename").loc[by_name.index]
    assert (by_name["recording"] == listed["src_file"]).all() and (by_name["fold"] == listed["fold"]).all()
    assert (by_name["label"] == listed["target"]).all() and (by_name["class"] == listed["category"]).all()
    assert set(manifest["sample_rate"]) == {44100} and set(manifest["channels"]) == {2}
    assert manifest["seconds"].between(4.99, 5.01).all()
    assert read_esc50(tmp_path).classes == tuple(map(esc50_category, range(3)))  # in target order, not sorted


def test_esc10_keeps_its_classes_and_does_not_report_the_rest(tmp_path):
    write_esc50(tmp_path, classes=4)
    manifest, rejected = build_manifest(tmp_path, layout=ESC50 | {"esc10": True})
    assert read_esc50(tmp_path, esc10=True).classes == (esc50_category(0), esc50_category(2))
    assert dict(zip(manifest["class"], manifest["label"])) == {esc50_category(0): 0, esc50_category(2): 1}
    assert rejected.empty  # the other classes' files are ESC-50's, not strays


def test_esc50_metadata_problems_are_listed_by_row(tmp_path):
    meta = write_esc50(tmp_path, classes=3)
    path = tmp_path / "meta" / "esc50.csv"
    broken = meta.astype(str)
    broken.loc[0, "category"] = esc50_category(1)  # target 0 now names two categories
    broken.loc[1, "fold"] = "two"
    broken.to_csv(path, index=False)
    with pytest.raises(DatasetError) as error:
        read_esc50(tmp_path)
    assert f"row 3: {meta.filename[1]}: fold is not a whole number" in str(error.value)
    assert "target shared by more than one category" in str(error.value)
    assert "category with more than one target" in str(error.value)
    moved = meta.copy()
    moved.loc[1, "fold"] = moved.loc[0, "fold"] % 5 + 1
    moved.loc[1, "src_file"] = moved.loc[0, "src_file"]
    moved.to_csv(path, index=False)
    with pytest.raises(DatasetError, match=f"recording {meta.src_file[0]}: folds"):
        read_esc50(tmp_path)


def test_an_unlisted_esc50_clip_is_reported_and_skipped(tmp_path):
    write_esc50(tmp_path, classes=2)
    sf.write(tmp_path / "audio" / "9-1-A-0.wav", tone(0, 1.0, 44100, 1, 0), 44100)
    with pytest.raises(DatasetError, match="audio/9-1-A-0.wav: on disk but not in the metadata"):
        build_manifest(tmp_path, layout=ESC50)
    manifest, rejected = build_manifest(tmp_path, on_bad_file="skip", layout=ESC50)
    assert list(rejected["file"]) == ["audio/9-1-A-0.wav"] and "9-1-A-0.wav" not in set(manifest["id"])


def test_a_folder_per_class_without_a_csv_at_16_khz_mono(tmp_path, caplog):
    written = write_folders(tmp_path, classes=3, recordings=5, takes=2)
    (tmp_path / "class_01" / ".hidden").mkdir()
    sf.write(tmp_path / "class_01" / ".hidden" / "x.wav", tone(1, 1.0, 16000, 1, 0), 16000)
    (tmp_path / "class_02" / "README.md").write_text("about this class\n")
    with caplog.at_level("INFO", logger="diffaug"):
        manifest, rejected = build_manifest(tmp_path, layout=FOLDERS)
    assert rejected.empty and len(manifest) == len(written) and tuple(manifest.columns) == MANIFEST_COLUMNS
    assert set(manifest["sample_rate"]) == {16000} and set(manifest["channels"]) == {1}
    assert read_folders(tmp_path).classes == ("class_00", "class_01", "class_02")
    assert (manifest["label"] == manifest["class"].str[-2:].astype(int)).all()
    assert (manifest["recording"] == manifest["id"]).all()  # no groups: a file is its own recording
    assert sorted(manifest.groupby("class")["fold"].nunique()) == [5, 5, 5]  # ten files a class, five folds
    assert "each file counts as its own recording" in caplog.text and "dealt into 5 folds" in caplog.text
    assert (manifest["id"] == manifest["path"].str.removeprefix(f"{tmp_path}/")).all()


def test_folds_dealt_by_group_keep_a_recording_in_one_fold(tmp_path):
    written = write_folders(tmp_path, classes=2, recordings=6, takes=3)
    written[["path", "group"]].to_csv(tmp_path / "meta.csv", index=False)
    manifest, _ = build_manifest(tmp_path, layout=FOLDERS | {"metadata": "meta.csv", "folds": 3})
    assert (manifest.groupby("recording")["fold"].nunique() == 1).all()
    assert (manifest.groupby(["class", "fold"])["recording"].nunique() == 2).all()  # two recordings each
    again = read_folders(tmp_path, "meta.csv", folds=3).clips
    assert list(again.sort_values("id")["fold"]) == list(manifest.sort_values("id")["fold"])  # the same every time


def test_a_csv_sets_folds_and_recordings_and_every_bad_row_is_named(tmp_path):
    written = write_folders(tmp_path, classes=2, recordings=4, takes=2)
    table = written.assign(fold=[1 + int(g[-1]) % 2 for g in written["group"]])
    table.to_csv(tmp_path / "meta.csv", index=False)
    manifest, rejected = build_manifest(tmp_path, layout=FOLDERS | {"metadata": "meta.csv"})
    assert rejected.empty and set(manifest["fold"]) == {1, 2}
    assert (manifest.set_index("id")["recording"] == table.set_index("path")["group"]).all()
    bad = table.astype(str)
    bad.loc[0, "label"] = "class_01"
    bad.loc[1, "path"] = "../elsewhere/x.wav"
    bad.loc[2, "fold"] = "1.5"
    bad.loc[3, "fold"] = "2" if table.loc[3, "fold"] == 1 else "1"  # its recording now spans two folds
    bad.to_csv(tmp_path / "meta.csv", index=False)
    with pytest.raises(DatasetError) as error:
        read_folders(tmp_path, "meta.csv")
    message = str(error.value)
    assert f"row 2: {table.path[0]}: label differs from its class folder" in message
    assert "row 3: ../elsewhere/x.wav: not a path inside a class folder" in message
    assert f"row 4: {table.path[2]}: fold is not a whole number" in message
    bad.loc[:2] = table.loc[:2].astype(str)
    bad.to_csv(tmp_path / "meta.csv", index=False)
    with pytest.raises(DatasetError, match=f"recording {table.group[3]}: folds 1 .* 2 "):
        read_folders(tmp_path, "meta.csv")


def test_files_outside_the_csv_or_the_class_folders_are_reported(tmp_path):
    written = write_folders(tmp_path, classes=2, recordings=3, takes=1)
    written.iloc[1:].to_csv(tmp_path / "meta.csv", index=False)
    sf.write(tmp_path / "loose.wav", tone(0, 1.0, 16000, 1, 0), 16000)
    manifest, rejected = build_manifest(tmp_path, on_bad_file="skip", layout=FOLDERS | {"metadata": "meta.csv"})
    reasons = dict(zip(rejected["file"], rejected["reason"]))
    assert reasons == {written.path[0]: "on disk but not in the metadata", "loose.wav": "not in a class folder"}
    assert len(manifest) == len(written) - 1


def test_fifty_classes_come_in_sorted_order_with_labels_to_match(tmp_path):
    write_folders(tmp_path, classes=50, recordings=2, takes=1, seconds=0.2)
    manifest, _ = build_manifest(tmp_path, layout=FOLDERS | {"folds": 2})
    classes = read_folders(tmp_path).classes
    assert len(classes) == 50 and list(classes) == sorted(classes)
    assert (manifest["class"] == [classes[k] for k in manifest["label"]]).all()


def test_esc50_splits_on_its_five_folds_by_recording(tmp_path):
    write_esc50(tmp_path, classes=3)
    manifest, _ = build_manifest(tmp_path, layout=ESC50)
    protocol = {"kind": "kfold", "test_folds": [5], "val_fraction": 0.25, "seed": 0, "test_fraction": 0.1}
    split = make_split(manifest, "fold5", protocol)
    recording = manifest.set_index("id")["recording"]
    parts = {k: set(recording[split[k]]) for k in ("train", "val", "test")}
    assert set(manifest.set_index("id").loc[split["test"], "fold"]) == {5}
    assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"] or parts["val"] & parts["test"])


def test_a_test_fold_the_dataset_lacks_is_refused_naming_the_key(tmp_path):
    from helpers import config_yaml

    from diffaug.layouts import read_dataset
    from diffaug.plan import plan_problems

    write_esc50(tmp_path, classes=3)
    clips = read_dataset(ESC50, tmp_path).clips
    problems = plan_problems(config_yaml(protocol__test_folds=[5, 6], arms=["baseline"]), clips)
    assert problems == [
        "protocol.test_folds: fold 6 holds no clip of the dataset (its folds: 1, 2, 3, 4, 5); remove it"
    ]


def test_the_same_manifest_reads_back_with_the_same_recordings(tmp_path):
    from diffaug.dataset import read_manifest

    write_folders(tmp_path / "data", classes=2, recordings=3, takes=2)
    manifest, _ = build_manifest(tmp_path / "data", layout=FOLDERS)
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    again = read_manifest(tmp_path / "manifest.csv")
    pd.testing.assert_frame_equal(again, manifest, check_dtype=False)
    assert again["recording"].dtype == manifest["recording"].dtype  # text both times: paths as recordings


def test_arms_and_classes_that_do_not_fit_the_dataset_are_refused_naming_the_key(tmp_path):
    from helpers import config_yaml

    from diffaug.layouts import read_dataset
    from diffaug.plan import plan_problems

    write_folders(tmp_path / "one", classes=1, recordings=4)
    clips = read_dataset(FOLDERS, tmp_path / "one").clips
    assert plan_problems(config_yaml(arms=["baseline"]), clips) == [
        "dataset: the dataset holds clips of 1 class(es); a classifier needs two or more"
    ]
    written = write_folders(tmp_path / "two", classes=2, recordings=2, takes=3)
    written.assign(fold=written["group"].str[-1].astype(int) + 1).to_csv(tmp_path / "two" / "meta.csv", index=False)
    clips = read_dataset(FOLDERS | {"metadata": "meta.csv"}, tmp_path / "two").clips
    config = config_yaml(protocol__test_folds=[1], arms=["baseline", "diffusion"], classifier__epoch_choice="last")
    problems = plan_problems(config, clips)
    assert problems[0].startswith("arms: split fold1: class class_00 has training clips of only one recording")
    assert (
        plan_problems(config_yaml(protocol__test_folds=[1], arms=["baseline"], classifier__epoch_choice="last"), clips)
        == []
    )


@pytest.mark.parametrize("name", ["esc50.yaml", "esc50-cpu.yaml"])
def test_the_esc50_configs_fit_esc50s_shape(tmp_path, name):
    """ESC-50's metadata as it is shaped (40 clips a class, 8 a fold, some recordings with several takes)."""
    import yaml
    from helpers import ROOT, SCHEMA, config_yaml

    from diffaug.layouts import read_dataset
    from diffaug.plan import check_config, plan_problems

    rows = []
    for target in range(50):
        for fold in range(1, 6):
            takes = [(k, take) for k in range(6) for take in "ABC"[: 1 + (k < 2)]]  # 6 recordings, 8 clips
            for k, take in takes:
                src_file = 1000 * target + 10 * fold + k
                rows.append(
                    [f"{fold}-{src_file}-{take}-{target}.wav", fold, target, f"c{target}", target < 10, src_file, take]
                )
    (tmp_path / "meta").mkdir()
    columns = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "meta" / "esc50.csv", index=False)
    config = config_yaml()
    config.update(yaml.safe_load((ROOT / "config" / name).read_text()))
    check_config(config, SCHEMA)
    catalogue = read_dataset(config["dataset"], tmp_path)
    assert len(catalogue.classes) == (10 if config["dataset"]["esc10"] else 50)
    assert plan_problems(config, catalogue.clips) == []


def test_a_download_is_refused_for_layouts_that_cannot_download():
    from helpers import SCHEMA, config_yaml

    from diffaug.plan import check_config
    from diffaug.schema import ConfigError

    with pytest.raises(ConfigError, match="dataset.download: only UrbanSound8K can be downloaded; esc50 is read"):
        check_config(config_yaml(dataset__layout="esc50", dataset__root="x", dataset__download=True), SCHEMA)


def test_class_names_that_look_like_numbers_or_missing_values_stay_names(tmp_path):
    from diffaug.dataset import read_manifest, read_table
    from diffaug.pairs import pairs_table

    names = ["0", "10", "2", "None"]
    write_folders(tmp_path / "data", recordings=3, takes=1, names=names)
    assert read_folders(tmp_path / "data").classes == ("0", "10", "2", "None")  # sorted as text
    manifest, _ = build_manifest(tmp_path / "data", layout=FOLDERS | {"folds": 2})
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    again = read_manifest(tmp_path / "manifest.csv")
    assert list(again["class"]) == list(manifest["class"]) and set(again["class"]) == set(names)
    pairs_table(again, 2, 0).to_csv(tmp_path / "pairs.csv", index=False)
    assert set(read_table(tmp_path / "pairs.csv")["class"]) == set(names)


def test_names_that_cannot_name_results_and_paths_that_leave_the_dataset_are_refused(tmp_path):
    from helpers import SCHEMA, config_yaml

    from diffaug.layouts import recording_ids
    from diffaug.plan import check_config
    from diffaug.schema import ConfigError

    write_folders(tmp_path / "braces", classes=1, recordings=2, takes=1, names=["a{b}"])
    write_folders(tmp_path / "braces", classes=1, recordings=2, takes=1, names=["plain"])
    with pytest.raises(DatasetError, match=r"a\{b\}/rec_0/take_0.wav: a class folder whose name cannot name"):
        read_folders(tmp_path / "braces")
    written = write_folders(tmp_path / "dotted", classes=2, recordings=2, takes=1)
    written.assign(path="./" + written["path"].str.replace("/", "\\", n=1)).to_csv(tmp_path / "dotted" / "m.csv")
    assert sorted(read_folders(tmp_path / "dotted", "m.csv").clips["id"]) == sorted(written["path"])  # normalised
    meta = write_esc50(tmp_path / "esc", classes=2).astype(str)
    meta.loc[0, "filename"] = "../../outside.wav"
    meta.to_csv(tmp_path / "esc" / "meta" / "esc50.csv", index=False)
    with pytest.raises(DatasetError, match=r"row 2: \.\./\.\./outside.wav: not a plain file name"):
        read_esc50(tmp_path / "esc")
    with pytest.raises(ConfigError, match="dataset.metadata: /data/m.csv must be a path relative to dataset.root"):
        check_config(config_yaml(dataset__layout="folders", dataset__root="x", dataset__metadata="/data/m.csv"), SCHEMA)
    assert list(recording_ids(pd.Series(["007", "7"]))) == ["007", "7"]  # not merged into one recording
    assert list(recording_ids(pd.Series(["12", "7"]))) == [12, 7]


def _esc50_with(tmp_path, column, value):
    """A tiny ESC-50 whose first metadata row has `value` in `column`; returns the metadata as written."""
    write_esc50(tmp_path, classes=2, recordings_per_fold=1, seconds=0.2)
    path = tmp_path / "meta" / "esc50.csv"
    meta = pd.read_csv(path, dtype=str, keep_default_na=False)
    meta.loc[0, column] = value
    meta.to_csv(path, index=False)
    return meta


@pytest.mark.parametrize(
    "column, value, reason",
    [
        ("filename", "", "filename is empty"),
        ("filename", "NA", "not an audio file's name"),
        ("filename", "/etc/hosts", "not a plain file name"),
        ("fold", "", "fold is empty"),
        ("fold", "1.0", "fold is not a whole number"),
        ("target", "", "target is empty"),  # and not again as a category with two targets
        ("target", "0.5", "target is not a whole number"),
        ("target", "1e0", "target is not a whole number"),
        ("category", "", "category is empty"),
        ("esc10", "NA", "esc10 is neither True nor False"),
        ("src_file", "", "src_file is empty"),
        ("take", "", "take is empty"),
        ("filename", "1-1-A-0\x00.wav", "not a plain file name"),
        ("target", "01", "target is not a whole number"),
    ],
)
def test_an_empty_or_unusable_esc50_cell_is_refused_naming_its_row(tmp_path, column, value, reason):
    meta = _esc50_with(tmp_path, column, value)
    with pytest.raises(DatasetError) as error:
        read_esc50(tmp_path)
    lines = str(error.value).splitlines()[1:]
    assert len(lines) == 1 and lines[0].startswith(f"  row 2: {meta.filename[0]}: {reason}")


def test_an_esc50_row_with_too_few_fields_and_a_clip_in_a_subfolder_are_named(tmp_path):
    meta = write_esc50(tmp_path, classes=2, recordings_per_fold=1, seconds=0.2)
    (tmp_path / "audio" / "sub").mkdir()
    shutil.copy(tmp_path / "audio" / meta.filename[0], tmp_path / "audio" / "sub" / "x.wav")
    manifest, rejected = build_manifest(tmp_path, on_bad_file="skip", layout=ESC50)
    assert list(rejected["file"]) == ["audio/sub/x.wav"] and len(manifest) == len(meta)
    assert list(rejected["reason"]) == ["on disk but not in the metadata, nor in audio/ itself (audio/<name>)"]
    with open(tmp_path / "meta" / "esc50.csv", "a") as csv:
        csv.write("1-9-A-0.wav,1,0\n")
    with pytest.raises(DatasetError) as error:
        read_esc50(tmp_path)
    assert str(error.value).splitlines()[1:] == [
        f"  row {len(meta) + 2}: 1-9-A-0.wav: {column} is empty" for column in ("category", "esc10", "src_file", "take")
    ]


@pytest.mark.parametrize(
    "column, value, reason",
    [
        ("path", "", "path is empty"),
        ("path", "NA", "not a path inside a class folder"),
        ("path", "/etc/hosts", "not a path inside a class folder"),
        ("path", "class_00/../../x.wav", "not a path inside a class folder"),
        ("path", "class_00/notes.txt", "not an audio file's name"),
        ("fold", "NA", "fold is not a whole number"),
        ("fold", "1.0", "fold is not a whole number"),
        ("fold", "1e0", "fold is not a whole number"),
        ("fold", "01", "fold is not a whole number"),
        ("path", "class_00/x\x00.wav", "not a path inside a class folder"),
    ],
)
def test_an_empty_or_unusable_folders_csv_cell_is_refused_naming_its_row(tmp_path, column, value, reason):
    written = write_folders(tmp_path, classes=2, recordings=2, takes=1, seconds=0.2)
    table = written.assign(fold="1").astype(str)
    table.loc[0, column] = value
    table.to_csv(tmp_path / "meta.csv", index=False)
    with pytest.raises(DatasetError) as error:
        read_folders(tmp_path, "meta.csv")
    lines = str(error.value).splitlines()[1:]
    assert len(lines) == 1 and lines[0].startswith("  row 2: ") and reason in lines[0]


def test_a_class_folder_may_be_a_link_out_of_the_dataset(tmp_path):
    """Links are followed, as a dataset assembled from folders elsewhere needs; the CSV's paths and
    the manifest's stay inside the dataset's folder."""
    write_folders(tmp_path / "data", classes=1, recordings=2, takes=1, seconds=0.2, names=["dog"])
    write_folders(tmp_path / "elsewhere", classes=1, recordings=2, takes=1, seconds=0.2, names=["cat"])
    (tmp_path / "data" / "cat").symlink_to(tmp_path / "elsewhere" / "cat")
    (tmp_path / "data" / "dog" / "loop").symlink_to(tmp_path / "data")  # walked once, not for ever
    manifest, rejected = build_manifest(tmp_path / "data", layout=FOLDERS | {"folds": 2})
    assert rejected.empty and sorted(manifest["id"]) == [
        f"{c}/rec_{k}/take_0.wav" for c in ("cat", "dog") for k in (0, 1)
    ]
    assert manifest["path"].str.startswith(f"{tmp_path}/data/").all()


def test_a_link_to_another_class_folder_inside_the_dataset_is_not_walked(tmp_path):
    """Its files keep their own class: followed, the link would list them (walked once) under the other."""
    write_folders(tmp_path, classes=2, recordings=2, takes=1, seconds=0.2, names=["a", "b"])
    (tmp_path / "b" / "link").symlink_to(tmp_path / "a")
    (tmp_path / "0_first").symlink_to(tmp_path / "b")  # listed before the folder it names
    clips = read_folders(tmp_path, folds=2).clips
    assert sorted(clips["id"]) == [f"{c}/rec_{k}/take_0.wav" for c in ("a", "b") for k in (0, 1)]
    assert (clips["class"] == clips["id"].str[0]).all()


def test_a_fifo_or_a_name_that_is_not_utf8_in_a_class_folder_is_reported_not_taken(tmp_path):
    written = write_folders(tmp_path, classes=2, recordings=2, takes=1, seconds=0.2)
    write_non_utf8_name(tmp_path / "class_00", (tmp_path / written.path[0]).read_bytes())
    fifo = tmp_path / "class_01" / "pipe.wav"
    os.mkfifo(fifo)
    assert sorted(read_folders(tmp_path).clips["id"]) == sorted([*written["path"], "class_01/pipe.wav"])
    manifest, rejected = ends_within(20, lambda: build_manifest(tmp_path, on_bad_file="skip", layout=FOLDERS), fifo)
    assert dict(zip(rejected["file"], rejected["reason"])) == {
        "class_01/pipe.wav": "not a regular file (a FIFO), not read",
        "class_00/caf\\xe9.wav": "file name is not valid UTF-8 (the manifest is UTF-8 text); rename it",
    }
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    rejected.to_csv(tmp_path / "rejected.csv", index=False)
    assert len(manifest) == len(written)
