"""Random bytes and random WAV headers: reading audio and building the manifest either work or
fail with the documented errors, never anything else."""

import struct
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffaug.audio import AudioError, read_audio
from diffaug.dataset import DatasetError, build_manifest
from diffaug.layouts import URBANSOUND8K_COLUMNS as METADATA_COLUMNS

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def wav_files(draw):
    """A RIFF/WAVE file whose header fields and payload are drawn at random."""
    fmt = struct.pack(
        "<HHIIHH",
        draw(st.sampled_from([1, 3, 6, 7, 0xFFFE, draw(st.integers(0, 0xFFFF))])),  # format tag
        draw(st.integers(0, 9)),  # channels
        draw(st.sampled_from([0, 1, 8000, 44100, 2**31 - 1, draw(st.integers(0, 2**32 - 1))])),  # rate
        draw(st.integers(0, 2**32 - 1)),  # byte rate
        draw(st.integers(0, 64)),  # block align
        draw(st.sampled_from([0, 8, 16, 24, 32, 64, draw(st.integers(0, 0xFFFF))])),  # bits
    )
    payload = draw(st.binary(max_size=2048))
    data_size = draw(st.sampled_from([len(payload), 0, 2**32 - 1, draw(st.integers(0, 2**32 - 1))]))
    riff_size = draw(st.sampled_from([36 + len(payload), 0, draw(st.integers(0, 2**32 - 1))]))
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_size)
        + payload
    )


def _check_read(content: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        path.write_bytes(content)
        try:
            data, rate = read_audio(path)
        except AudioError as error:
            assert error.reason and str(path) in str(error)
            return
        assert data.ndim == 2 and data.shape[1] > 0 and rate > 0 and np.isfinite(data).all()


@FUZZ
@given(st.binary(max_size=4096))
def test_reading_random_bytes(content):
    _check_read(content)


@FUZZ
@given(wav_files())
def test_reading_random_wav_headers(content):
    _check_read(content)


@FUZZ
@given(st.one_of(wav_files(), st.binary(max_size=2048)), st.sampled_from(["error", "skip"]))
def test_the_manifest_step_on_random_files(content, on_bad_file):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "audio" / "fold1").mkdir(parents=True)
        (root / "metadata").mkdir()
        (root / "audio" / "fold1" / "1-0-0-0.wav").write_bytes(content)
        row = dict(zip(METADATA_COLUMNS, ["1-0-0-0.wav", 1, 0.0, 1.0, 1, 1, 0, "air_conditioner"]))
        pd.DataFrame([row]).to_csv(root / "metadata" / "UrbanSound8K.csv", index=False)
        try:
            manifest, rejected = build_manifest(root, on_bad_file)
        except DatasetError as error:
            assert on_bad_file == "error" and "1-0-0-0.wav" in str(error)
            return
        assert len(manifest) + len(rejected) == 1
        if len(manifest):
            assert manifest.loc[0, "seconds"] > 0


def test_a_header_claiming_hours_reads_only_what_is_there(tmp_path):
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVEfmt " + fmt
    (tmp_path / "huge.wav").write_bytes(header + b"data" + struct.pack("<I", 0xFFFFFFF0) + b"\1" * 64)
    try:
        data, _ = read_audio(tmp_path / "huge.wav")
    except AudioError:
        return
    assert data.shape == (1, 32)  # 64 bytes of 16-bit samples, not the 2**31 the header claims
