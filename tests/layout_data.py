"""Small datasets written in each layout's own format: ESC-50's CSV and file names, a folder per class;
and the odd files that a dataset on disk may hold."""

import os
import struct
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf


def tone(class_index: int, seconds: float, rate: int, channels: int, seed: int) -> np.ndarray:
    """A clip that tells its class by pitch, with noise that differs per clip: (samples, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    mono = 0.4 * np.sin(2 * np.pi * (220 + 110 * class_index) * t) + 0.05 * rng.standard_normal(len(t))
    return np.stack([mono * (0.9**c) for c in range(channels)], axis=1).astype(np.float32)


def esc50_category(target: int) -> str:
    """A category name whose sorted order is not the targets' (z_00, y_01, x_02 ...), as ESC-50's is not."""
    return f"{'zyxwvutsrq'[target % 10]}_sound_{target:02d}"


def write_esc50(
    root: Path,
    classes: int = 3,
    recordings_per_fold: int = 2,
    seconds: float = 1.0,
    rate: int = 44100,
    channels: int = 1,
    folds: int = 5,
) -> pd.DataFrame:
    """ESC-50's layout: audio/<fold>-<src_file>-<take>-<target>.wav and meta/esc50.csv; each class
    has `recordings_per_fold` recordings per fold, the first of each fold with two takes (A and B).
    The even targets are ESC-10's."""
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = []
    for target in range(classes):
        for fold in range(1, folds + 1):
            for k in range(recordings_per_fold):
                src_file = 100000 + 1000 * target + 10 * fold + k
                for take in "AB"[: 2 if k == 0 else 1]:
                    name = f"{fold}-{src_file}-{take}-{target}.wav"
                    sf.write(root / "audio" / name, tone(target, seconds, rate, channels, src_file + ord(take)), rate)
                    rows.append([name, fold, target, esc50_category(target), target % 2 == 0, src_file, take])
    meta = pd.DataFrame(rows, columns=["filename", "fold", "target", "category", "esc10", "src_file", "take"])
    meta.sample(frac=1, random_state=0).to_csv(root / "meta" / "esc50.csv", index=False)  # rows in no order
    return meta


def write_folders(
    root: Path,
    classes: int = 3,
    recordings: int = 6,
    takes: int = 2,
    seconds: float = 1.0,
    rate: int = 16000,
    channels: int = 1,
    names: list[str] | None = None,
) -> pd.DataFrame:
    """A folder per class (`names`, or `class_NN/`), each recording's takes in a subfolder of its own
    (`class_NN/rec_K/take_T.wav`); returns path (relative to root), label and group of every file."""
    rows = []
    for index, name in enumerate(names or [f"class_{k:02d}" for k in range(classes)]):
        for rec in range(recordings):
            for take in range(takes):
                path = Path(name) / f"rec_{rec}" / f"take_{take}.wav"
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                sf.write(root / path, tone(index, seconds, rate, channels, 1000 * index + 10 * rec + take), rate)
                rows.append([path.as_posix(), name, f"{name}/rec_{rec}"])
    return pd.DataFrame(rows, columns=["path", "label", "group"])


def write_non_utf8_name(folder: Path, content: bytes) -> None:
    """A file named caf<0xE9>.wav (Latin-1, not UTF-8) in `folder`; skips where the file system refuses it."""
    try:
        handle = os.open(os.fsencode(folder) + b"/caf\xe9.wav", os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError as error:
        pytest.skip(f"this file system takes only UTF-8 names ({error})")
    os.write(handle, content)
    os.close(handle)


def _crc(data: bytes, poly: int, bits: int) -> int:
    """The CRCs of a FLAC frame: CRC-8 (poly 0x07) of its header, CRC-16 (poly 0x8005) of the whole frame."""
    top, mask, crc = 1 << (bits - 1), (1 << bits) - 1, 0
    for byte in data:
        crc ^= byte << (bits - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & mask if crc & top else (crc << 1) & mask
    return crc


def write_silent_flac(path: Path, seconds: int, channels: int = 8, block: int = 16384) -> None:
    """A FLAC of `seconds` of 16-bit silence at 96 kHz, framed as libFLAC frames silence (a constant subframe
    per channel) but without encoding a sample: a long file by its header, small on disk, written at once."""
    total = seconds * 96000
    info = struct.pack(">HH6x", block, block)  # no frame sizes, and (below) no MD5 of the samples: both optional
    info += ((96000 << 44) | ((channels - 1) << 41) | (15 << 36) | total).to_bytes(8, "big") + bytes(16)
    parts = [b"fLaC", bytes([0x80, 0, 0, len(info)]), info]  # the last metadata block: STREAMINFO
    for number, start in enumerate(range(0, total, block)):
        # sync code; the block size in 16 bits after the frame number; 96 kHz; independent channels; 16 bits
        header = bytes([0xFF, 0xF8, 0x7B, (channels - 1) << 4 | 0x08]) + chr(number).encode()
        header += struct.pack(">H", min(block, total - start) - 1)
        frame = header + bytes([_crc(header, 0x07, 8)]) + bytes(3 * channels)  # each channel constant 0
        parts.append(frame + struct.pack(">H", _crc(frame, 0x8005, 16)))
    path.write_bytes(b"".join(parts))


def ends_within(seconds: float, call, fifo: Path):
    """call()'s result, or what it raised, from a thread; fails if it has not ended within `seconds`
    (a FIFO opened for reading waits for a writer: one is opened and closed then, so that it ends)."""
    result = {}

    def run():
        try:
            result["value"] = call()
        except Exception as error:
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail(f"{fifo} was opened for reading")
    if "error" in result:
        raise result["error"]
    return result["value"]
