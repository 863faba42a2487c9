import hashlib
from dataclasses import replace

import pandas as pd
import pytest
import soundfile as sf

from diffaug.layouts import URBANSOUND8K_CLASSES as CLASSES
from diffaug.layouts import URBANSOUND8K_COLUMNS as METADATA_COLUMNS
from diffaug.synthetic import SyntheticSpec, synthesize_metadata, write_synthetic_dataset


def test_layout_matches_urbansound8k(tiny_dataset):
    root, manifest = tiny_dataset
    meta = pd.read_csv(root / "metadata" / "UrbanSound8K.csv")
    assert tuple(meta.columns) == METADATA_COLUMNS
    assert set(meta["class"]) == set(CLASSES)
    assert (meta["classID"] == meta["class"].map(CLASSES.index)).all()
    assert meta["fold"].between(1, 10).all()
    for row in meta.itertuples():
        assert (root / "audio" / f"fold{row.fold}" / row.slice_file_name).is_file()
    assert (meta.groupby("fsID").size() == 2).all()  # several clips per recording
    assert (meta.groupby("fsID")["fold"].nunique() == 1).all()  # a recording stays in one fold
    assert (meta["end"] > meta["start"]).all()


def test_files_vary_like_the_real_dataset():
    meta = synthesize_metadata(SyntheticSpec(recordings_per_class=10, clips_per_recording=5))
    assert meta["sample_rate"].min() == 8000 and meta["sample_rate"].max() == 48000
    assert set(meta["subtype"]) == {"PCM_U8", "PCM_16", "PCM_24", "FLOAT"}
    assert set(meta["channels"]) == {1, 2}
    seconds = meta["end"] - meta["start"]
    assert 0.1 <= seconds.min() < 0.5 and seconds.max() == pytest.approx(4.0)
    assert set(meta["fold"]) == set(range(1, 11))


def test_written_files_have_their_declared_format(tiny_dataset):
    root, manifest = tiny_dataset
    meta = synthesize_metadata(SyntheticSpec(recordings_per_class=4, clips_per_recording=2, seed=3)).set_index(
        "slice_file_name"
    )
    for row in manifest.itertuples():
        info = sf.info(row.path)
        assert info.samplerate == meta.loc[row.id, "sample_rate"]
        assert info.channels == meta.loc[row.id, "channels"]
        assert info.subtype == meta.loc[row.id, "subtype"]


def _digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return hashlib.sha256(b"".join(p.relative_to(root).as_posix().encode() + p.read_bytes() for p in files)).hexdigest()


def test_deterministic_for_a_seed(tmp_path):
    spec = SyntheticSpec(recordings_per_class=2, clips_per_recording=1, seed=5, max_seconds=1.0)  # short: cheap
    write_synthetic_dataset(tmp_path / "a", spec, progress=False)
    write_synthetic_dataset(tmp_path / "b", spec, progress=False, workers=2)  # worker processes: the same bytes
    write_synthetic_dataset(tmp_path / "c", replace(spec, seed=6), progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_refuses_to_overwrite_foreign_data(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="refusing"):
        write_synthetic_dataset(tmp_path, SyntheticSpec(recordings_per_class=1, clips_per_recording=1), progress=False)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_an_interrupted_write_leaves_the_previous_dataset_and_no_side_folder(tmp_path, monkeypatch):
    from diffaug import synthetic

    spec = SyntheticSpec(recordings_per_class=1, clips_per_recording=1)
    write_synthetic_dataset(tmp_path / "data", spec, progress=False, classes=("siren",))
    before = _digest(tmp_path / "data")

    def fail(row, spec, folder):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_write_clip", fail)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic_dataset(tmp_path / "data", spec, progress=False)
    assert _digest(tmp_path / "data") == before and sorted(p.name for p in tmp_path.iterdir()) == ["data"]
