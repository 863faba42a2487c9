import shutil

import pandas as pd
import pytest

from diffaug.dataset import MANIFEST_COLUMNS, DatasetError, build_manifest, read_metadata


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


def test_missing_audio_files_are_listed(dataset_copy):
    meta = pd.read_csv(dataset_copy / "metadata" / "UrbanSound8K.csv")
    for row in meta.head(2).itertuples():
        (dataset_copy / "audio" / f"fold{row.fold}" / row.slice_file_name).unlink()
    with pytest.raises(DatasetError) as error:
        build_manifest(dataset_copy)
    assert str(error.value).count("audio file not found") == 2


def test_unreadable_audio_is_reported(dataset_copy):
    meta = pd.read_csv(dataset_copy / "metadata" / "UrbanSound8K.csv")
    row = meta.iloc[0]
    (dataset_copy / "audio" / f"fold{row.fold}" / row.slice_file_name).write_bytes(b"not a wav file at all")
    with pytest.raises(DatasetError, match=f"{row.slice_file_name}: unreadable audio"):
        build_manifest(dataset_copy)
