import os
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from layout_data import ends_within, write_non_utf8_name

from diffaug.dataset import MANIFEST_COLUMNS, DatasetError, build_manifest
from diffaug.layouts import read_urbansound8k as read_metadata


@pytest.fixture
def dataset_copy(tiny_dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset[0], root)
    return root


def _edit(root, change):
    path = root / "metadata" / "UrbanSound8K.csv"
    meta = pd.read_csv(path)
    change(meta)
    meta.to_csv(path, index=False)
    return meta


def test_manifest_has_a_row_per_clip_with_its_header(tiny_dataset):
    root, manifest = tiny_dataset
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    assert len(manifest) == 80
    assert manifest["seconds"].between(0.09, 4.01).all()
    assert manifest["sample_rate"].isin([8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]).all()


def test_missing_metadata_names_the_file(tmp_path):
    with pytest.raises(DatasetError, match="UrbanSound8K.csv: metadata file not found"):
        read_metadata(tmp_path)


def test_missing_column_is_named(dataset_copy):
    path = dataset_copy / "metadata" / "UrbanSound8K.csv"
    pd.read_csv(path).drop(columns=["salience"]).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="missing column.*salience"):
        read_metadata(dataset_copy)


def test_every_offending_row_is_listed(dataset_copy):
    def corrupt(meta):
        meta.loc[0, "class"] = "helicopter"
        meta.loc[1, "fold"] = 11
        meta.loc[2, "classID"] = (meta.loc[2, "classID"] + 1) % 10

    meta = _edit(dataset_copy, corrupt)
    with pytest.raises(DatasetError) as error:
        read_metadata(dataset_copy)
    message = str(error.value)
    assert f"row 2: {meta.slice_file_name[0]}" in message and "unknown class" in message
    assert f"row 3: {meta.slice_file_name[1]}" in message and "fold outside 1-10" in message
    assert f"row 4: {meta.slice_file_name[2]}" in message and "classID does not match" in message


def test_a_recording_in_two_folds_is_refused(dataset_copy):
    def move_one_clip(meta):
        meta.loc[0, "fold"] = meta.loc[0, "fold"] % 4 + 1

    meta = _edit(dataset_copy, move_one_clip)
    fs_id, folds = meta.loc[0, "fsID"], sorted(meta.loc[meta["fsID"] == meta.loc[0, "fsID"], "fold"])
    with pytest.raises(DatasetError) as error:
        read_metadata(dataset_copy)
    message = str(error.value)
    assert "UrbanSound8K.csv: 1 recording(s) in more than one fold" in message
    assert f"recording {fs_id}: folds {folds[0]} (1 clip), {folds[1]} (1 clip)" in message

    def move_a_clip_of_every_recording(meta):
        first = ~meta["fsID"].duplicated()
        meta.loc[first, "fold"] = meta.loc[first, "fold"] % 4 + 1

    _edit(dataset_copy, move_a_clip_of_every_recording)
    with pytest.raises(DatasetError, match=r"40 recording\(s\) in more than one fold") as error:
        read_metadata(dataset_copy)
    assert str(error.value).count("  recording ") == 20 and str(error.value).endswith("  ... and 20 more")


def test_missing_audio_files_are_listed(dataset_copy):
    meta = pd.read_csv(dataset_copy / "metadata" / "UrbanSound8K.csv")
    for row in meta.head(2).itertuples():
        (dataset_copy / "audio" / f"fold{row.fold}" / row.slice_file_name).unlink()
    with pytest.raises(DatasetError) as error:
        build_manifest(dataset_copy)
    assert str(error.value).count("no such file") == 2


def test_duplicates_and_bad_ids_are_listed(dataset_copy):
    def corrupt(meta):
        meta.loc[1, "slice_file_name"] = meta.loc[0, "slice_file_name"]
        meta["fsID"] = meta["fsID"].astype(str)
        meta.loc[2, "fsID"] = "abc"

    meta = _edit(dataset_copy, corrupt)
    with pytest.raises(DatasetError) as error:
        read_metadata(dataset_copy)
    assert str(error.value).count("listed more than once") == 2
    assert f"row 4: {meta.slice_file_name[2]}" in str(error.value) and "fsID is not a whole number" in str(error.value)


def test_unreadable_audio_is_reported(dataset_copy):
    meta = pd.read_csv(dataset_copy / "metadata" / "UrbanSound8K.csv")
    row = meta.iloc[0]
    (dataset_copy / "audio" / f"fold{row.fold}" / row.slice_file_name).write_bytes(b"not a wav file at all")
    with pytest.raises(DatasetError, match=f"{row.slice_file_name}: unreadable audio"):
        build_manifest(dataset_copy)


def _write_bad_files(root):
    """One file of each kind of bad audio, each listed in the metadata; returns {name: reason part}."""
    fold = root / "audio" / "fold1"
    rate = 22050
    sf.write(fold / "nan.wav", np.array([0.1, np.nan, 0.2] * 1000, np.float32), rate, subtype="FLOAT")
    sf.write(fold / "inf.wav", np.array([0.1, np.inf] * 1000, np.float32), rate, subtype="FLOAT")
    sf.write(fold / "silent.wav", np.zeros(rate, np.float32), rate)
    sf.write(fold / "single.wav", np.array([0.5], np.float32), rate)
    sf.write(fold / "long.wav", np.full(5 * rate, 0.1, np.float32), rate)
    sf.write(fold / "empty.wav", np.zeros(0, np.float32), rate)
    good = (fold / "nan.wav").read_bytes()
    (fold / "truncated.wav").write_bytes(good[:20])
    (fold / "random.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    (fold / "text.wav").write_text("this is not audio\n" * 50)
    expected = {
        "nan.wav": "NaN or infinite",
        "inf.wav": "NaN or infinite",
        "silent.wav": "silent",
        "single.wav": "too short",
        "long.wav": "longer than 4 s",
        "empty.wav": "",
        "truncated.wav": "unreadable",
        "random.wav": "unreadable",
        "text.wav": "unreadable",
    }
    meta_path = root / "metadata" / "UrbanSound8K.csv"
    meta = pd.read_csv(meta_path)
    in_fold1 = meta[meta["fold"] == 1].iloc[0].to_dict()  # a recording of fold 1, so no fsID spans two folds
    rows = [{**in_fold1, "slice_file_name": name} for name in expected]
    pd.concat([meta, pd.DataFrame(rows)]).to_csv(meta_path, index=False)
    (fold / "stray.wav").write_bytes((root / "audio" / f"fold{meta.fold[0]}" / meta.slice_file_name[0]).read_bytes())
    return {**expected, "stray.wav": "not in the metadata"}


def test_every_bad_file_is_listed_with_its_reason_in_one_message(dataset_copy):
    expected = _write_bad_files(dataset_copy)
    with pytest.raises(DatasetError) as error:
        build_manifest(dataset_copy)
    lines = {line.split(":")[0].strip(): line for line in str(error.value).splitlines()[1:-1]}
    assert set(lines) == {f"audio/fold1/{name}" for name in expected}
    for name, reason in expected.items():
        assert reason in lines[f"audio/fold1/{name}"]
    assert "on_bad_file: skip" in str(error.value)


def test_skip_leaves_bad_files_out_and_lists_them(dataset_copy, tiny_dataset):
    expected = _write_bad_files(dataset_copy)
    manifest, rejected = build_manifest(dataset_copy, on_bad_file="skip")
    assert set(rejected["file"]) == {f"audio/fold1/{name}" for name in expected}
    assert len(manifest) == len(tiny_dataset[1]) and not set(manifest["id"]) & set(expected)


class _FakeSoundata:
    """Stands in for soundata, which needs the network: records calls, writes a tiny layout."""

    def __init__(self, source, missing):
        self.source, self.missing, self.calls = source, missing, []

    def initialize(self, name, data_home):
        self.calls.append(("initialize", name, data_home))
        return self

    def download(self, cleanup):
        self.calls.append(("download", cleanup))
        shutil.copytree(self.source, self.calls[0][2], dirs_exist_ok=True)

    def validate(self, verbose):
        return {"clips": {"a.wav": ["x"]} if self.missing else {}, "metadata": {}}, {"clips": {}}


@pytest.mark.parametrize("missing", [False, True])
def test_download_goes_through_soundata(tiny_dataset, tmp_path, monkeypatch, missing):
    from diffaug.steps import prepare_dataset

    fake = _FakeSoundata(tiny_dataset[0], missing)
    monkeypatch.setitem(__import__("sys").modules, "soundata", fake)
    root = tmp_path / "UrbanSound8K"
    settings = {"layout": "urbansound8k", "root": str(root), "download": True}
    metadata = root / "metadata" / "UrbanSound8K.csv"
    if missing:
        with pytest.raises(DatasetError, match="missing files"):
            prepare_dataset(dataset=settings, metadata=str(metadata))
    else:
        prepare_dataset(dataset=settings, metadata=str(metadata))
        assert metadata.is_file() and len(build_manifest(root)[0]) == len(tiny_dataset[1])
    assert fake.calls[:2] == [("initialize", "urbansound8k", str(root)), ("download", True)]


def test_hidden_and_non_audio_files_are_ignored_and_logged(dataset_copy, tiny_dataset, caplog):
    """A real copy as it comes: .DS_Store in every fold, AppleDouble files, notes beside the clips."""
    folds = sorted((dataset_copy / "audio").glob("fold*"))
    for fold in folds:
        (fold / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + bytes(100))
    (folds[0] / "._7061-6-0-0.wav").write_bytes(b"\0\5\26\7" + bytes(60))
    (folds[0] / "README.txt").write_text("notes\n")
    (dataset_copy / "audio" / ".DS_Store").write_bytes(b"\0")
    with caplog.at_level("INFO", logger="diffaug.dataset"):
        manifest, rejected = build_manifest(dataset_copy)
    assert len(manifest) == len(tiny_dataset[1]) and rejected.empty
    assert f"ignored {len(folds) + 3} hidden or non-audio file(s)" in caplog.text  # audio/.DS_Store too
    assert "fold1/.DS_Store" in caplog.text and "README.txt" in caplog.text


def test_an_unlisted_wav_stays_an_error_beside_ignored_files(dataset_copy):
    fold = dataset_copy / "audio" / "fold1"
    (fold / ".DS_Store").write_bytes(b"\0")
    clip = next(fold.glob("*.wav"))
    (fold / "STRAY.WAV").write_bytes(clip.read_bytes())
    with pytest.raises(DatasetError) as error:
        build_manifest(dataset_copy)
    assert "audio/fold1/STRAY.WAV: on disk but not in the metadata" in str(error.value)
    assert ".DS_Store" not in str(error.value) and "1 unusable audio file(s)" in str(error.value)


def _metadata_only(tiny_dataset, tmp_path, change):
    """The tiny dataset's metadata (no audio) under tmp_path, read as text and changed by `change`."""
    (tmp_path / "metadata").mkdir()
    meta = pd.read_csv(tiny_dataset[0] / "metadata" / "UrbanSound8K.csv", dtype=str, keep_default_na=False)
    change(meta)
    meta.to_csv(tmp_path / "metadata" / "UrbanSound8K.csv", index=False)
    return meta


@pytest.mark.parametrize(
    "column, value, reason",
    [
        ("slice_file_name", "", "slice_file_name is empty"),
        ("slice_file_name", "NA", "not an audio file's name"),
        ("slice_file_name", "../fold2/x.wav", "not a plain file name"),
        ("slice_file_name", "/etc/hosts", "not a plain file name"),
        ("fsID", "", "fsID is empty"),
        ("fsID", "NA", "fsID is not a whole number"),
        ("fsID", "12.5", "fsID is not a whole number"),
        ("fsID", "{fsID}.0", "fsID is not a whole number"),  # else "100000.0" and "100000": two recordings
        ("fsID", "1e5", "fsID is not a whole number"),
        ("fold", "", "fold is empty"),
        ("fold", "NA", "fold outside 1-10"),
        ("fold", "1e0", "fold outside 1-10"),
        ("classID", "", "classID is empty"),
        ("classID", "NA", "classID is not a whole number"),
        ("classID", "{classID}.0", "classID is not a whole number"),
        ("class", "", "class is empty"),
        ("class", "NA", "unknown class"),
    ],
)
def test_an_empty_or_unusable_cell_is_refused_naming_its_row(tiny_dataset, tmp_path, column, value, reason):
    def corrupt(meta):
        meta.loc[0, column] = value.format(**meta.loc[0])

    meta = _metadata_only(tiny_dataset, tmp_path, corrupt)
    with pytest.raises(DatasetError) as error:
        read_metadata(tmp_path)
    lines = str(error.value).splitlines()[1:]
    assert len(lines) == 1 and lines[0].startswith(f"  row 2: {meta.slice_file_name[0]} (fold ") and reason in lines[0]


def test_a_row_with_too_few_fields_is_refused_naming_its_row(tiny_dataset, tmp_path):
    meta = _metadata_only(tiny_dataset, tmp_path, lambda meta: None)
    with open(tmp_path / "metadata" / "UrbanSound8K.csv", "a") as csv:
        csv.write("extra.wav,100000\n")
    with pytest.raises(DatasetError) as error:
        read_metadata(tmp_path)
    row = len(meta) + 2
    assert {line.split(": ")[-1] for line in str(error.value).splitlines()[1:]} == {
        "fold is empty",
        "classID is empty",
        "class is empty",
    }
    assert f"row {row}: extra.wav (fold , class )" in str(error.value)


def test_unlisted_audio_anywhere_under_audio_is_reported_and_skipped(dataset_copy):
    audio = dataset_copy / "audio"
    clip = next((audio / "fold1").glob("*.wav")).read_bytes()
    for stray in ("fold1/sub/x.wav", "x.wav", "extra/x.wav", "fold1/y.wav"):
        (audio / stray).parent.mkdir(exist_ok=True)
        (audio / stray).write_bytes(clip)
    (audio / "fold1" / ".hidden").mkdir()
    (audio / "fold1" / ".hidden" / "z.wav").write_bytes(clip)  # hidden folders stay ignored
    elsewhere = "on disk but not in the metadata, nor in a fold folder itself (audio/fold<k>/<name>)"
    expected = {
        "audio/extra/x.wav": elsewhere,
        "audio/fold1/sub/x.wav": elsewhere,
        "audio/fold1/y.wav": "on disk but not in the metadata",
        "audio/x.wav": elsewhere,
    }
    with pytest.raises(DatasetError) as error:
        build_manifest(dataset_copy)
    assert str(error.value).splitlines()[1:-1] == [f"  {name}: {reason}" for name, reason in expected.items()]
    manifest, rejected = build_manifest(dataset_copy, on_bad_file="skip")
    assert dict(zip(rejected["file"], rejected["reason"])) == expected and len(manifest) == 80


def test_a_directory_or_a_fifo_in_place_of_a_clip_is_reported_as_such_and_never_read(dataset_copy):
    meta = pd.read_csv(dataset_copy / "metadata" / "UrbanSound8K.csv")
    directory, fifo = (dataset_copy / "audio" / f"fold{r.fold}" / r.slice_file_name for r in meta.head(2).itertuples())
    directory.unlink()
    directory.mkdir()
    fifo.unlink()
    os.mkfifo(fifo)
    manifest, rejected = ends_within(20, lambda: build_manifest(dataset_copy, on_bad_file="skip"), fifo)
    reasons = dict(zip(rejected["file"], rejected["reason"]))
    assert reasons == {
        directory.relative_to(dataset_copy).as_posix(): "a directory, not an audio file",
        fifo.relative_to(dataset_copy).as_posix(): "not a regular file (a FIFO), not read",
    }
    assert len(manifest) == len(meta) - 2
    with pytest.raises(DatasetError, match="2 unusable audio file"):
        ends_within(20, lambda: build_manifest(dataset_copy), fifo)


def test_a_symlinked_clip_is_read_and_a_broken_link_is_named(dataset_copy, tmp_path):
    """Links are followed (an annexed dataset, audio kept on another disk): the metadata's names stay
    plain file names inside audio/fold<k>/, but what the dataset links to is its owner's choice."""
    meta = pd.read_csv(dataset_copy / "metadata" / "UrbanSound8K.csv")
    linked, broken = (dataset_copy / "audio" / f"fold{r.fold}" / r.slice_file_name for r in meta.head(2).itertuples())
    outside = tmp_path / "store" / "clip.wav"
    outside.parent.mkdir()
    shutil.move(linked, outside)
    linked.symlink_to(outside)
    broken.unlink()
    broken.symlink_to(tmp_path / "store" / "gone.wav")
    manifest, rejected = build_manifest(dataset_copy, on_bad_file="skip")
    assert str(linked) in set(manifest["path"])  # the path inside the dataset, not the link's target
    assert list(rejected["reason"]) == [f"a symbolic link to {tmp_path}/store/gone.wav, which does not exist"]


def test_a_file_name_that_is_not_utf8_is_named_escaped_and_written(dataset_copy, tmp_path, caplog):
    fold = dataset_copy / "audio" / "fold1"
    write_non_utf8_name(fold, next(fold.glob("*.wav")).read_bytes())
    (fold / os.fsdecode(b"notes-\xff.txt")).write_text("notes\n")
    reason = "file name is not valid UTF-8 (the manifest is UTF-8 text); rename it"
    with pytest.raises(DatasetError) as error:
        build_manifest(dataset_copy)
    assert f"  audio/fold1/caf\\xe9.wav: {reason}" in str(error.value).splitlines()
    with caplog.at_level("INFO", logger="diffaug.dataset"):
        manifest, rejected = build_manifest(dataset_copy, on_bad_file="skip")
    assert "audio/fold1/notes-\\xff.txt" in caplog.text  # an ignored file, logged as printable text
    rejected.to_csv(tmp_path / "rejected.csv", index=False)
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    again = pd.read_csv(tmp_path / "rejected.csv", encoding="utf-8")
    assert list(again["file"]) == ["audio/fold1/caf\\xe9.wav"] and list(again["reason"]) == [reason]
