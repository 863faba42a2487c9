"""Audio file I/O (soundfile) and the resampling and mixing every stage shares.

A file's header (rate, channels, length) is checked before any sample is decoded, and no read
decodes more than the length it allows, so a small file that claims hours costs nothing."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from .files import atomic_output
from .layouts import printable

SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile's command number


MAX_SECONDS_READ = 600.0
"""Longest audio read at all: a header claiming more is refused before any sample is read."""
MAX_SAMPLES_READ = 2**26
"""Most samples (all channels together) in one file, 256 MB as float32: 600 s of 48 kHz stereo, or
87 s of 8 channels at 96 kHz. A file whose header claims more is refused before decoding."""
MIN_SECONDS = 0.01
MAX_PEAK = 1000.0
"""Largest sample magnitude taken as audio: full scale is 1.0 in every format as read, and a float file
may exceed it a little, but not by 60 dB; beyond that its features overflow to infinity."""
SLACK_SECONDS = 0.01
"""How far past a length limit a clip may run (rounding in the files' own lengths)."""
BLOCK_FRAMES = 65536
"""Frames decoded at a time when a file is only checked (inspect_audio)."""


class AudioError(ValueError):
    """An audio file that cannot be used; `reason` says why, the message names the file too."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def file_problem(path: str | os.PathLike) -> str | None:
    """Why `path` is no file to read audio from, found without opening it (a FIFO would block the
    read); None for a regular file, or a link to one."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(path):
            return f"a symbolic link to {printable(os.readlink(path))}, which does not exist"
        return "no such file"
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the name
        return f"cannot be read ({getattr(error, 'strerror', None) or error})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory, not an audio file"
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a device", stat.S_ISBLK: "a device"}
    kind = next((name for test, name in kinds.items() if test(mode)), "of another kind")
    return f"not a regular file ({kind}), not read"


@contextmanager
def _opened(path: str | os.PathLike, max_seconds: float):
    """The open file, its header checked: at most `max_seconds` and MAX_SAMPLES_READ samples. Any
    error of the decoder, on opening or reading, is an AudioError naming the file."""
    try:
        with sf.SoundFile(str(path)) as handle:
            rate, channels, frames = handle.samplerate, handle.channels, handle.frames
            if frames > (max_seconds + SLACK_SECONDS) * rate:
                raise AudioError(path, f"longer than {max_seconds:g} s ({frames / rate:.2f} s by its header)")
            if frames * channels > MAX_SAMPLES_READ:
                raise AudioError(
                    path,
                    f"{frames * channels:,} samples ({channels} channels of {frames / rate:.1f} s at {rate} Hz) by "
                    f"its header, over the {MAX_SAMPLES_READ:,} read at once; cut or mix it down first",
                )
            yield handle
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises several types for broken files
        raise AudioError(path, f"unreadable audio ({type(exc).__name__}: {exc})") from None


def _sample_problem(block: np.ndarray) -> str | None:
    """Why decoded samples are not audio, if they are not."""
    if not np.isfinite(block).all():
        return "NaN or infinite samples"
    peak = float(np.abs(block).max(initial=0.0))
    if peak > MAX_PEAK:
        return f"peak of {peak:.3g}, over {MAX_PEAK:g} times full scale: not audio as its format stores it"
    return None


def read_audio(path: str | os.PathLike, max_seconds: float = MAX_SECONDS_READ) -> tuple[np.ndarray, int]:
    """Read a file as float32 of shape (channels, samples) and its sample rate; AudioError for one that
    is unreadable, empty, longer than `max_seconds` or over MAX_SAMPLES_READ, or not finite audio."""
    with _opened(path, max_seconds) as handle:
        limit = int((max_seconds + SLACK_SECONDS) * handle.samplerate) + 1  # a header may understate the length
        data = handle.read(frames=min(limit, MAX_SAMPLES_READ // handle.channels + 1), dtype="float32", always_2d=True)
        rate = handle.samplerate
    if data.shape[0] == 0:
        raise AudioError(path, "no samples")
    if data.shape[0] >= limit or data.size > MAX_SAMPLES_READ:
        raise AudioError(path, f"longer than its header says, and over {max_seconds:g} s or the samples read at once")
    if problem := _sample_problem(data):
        raise AudioError(path, problem)
    return np.ascontiguousarray(data.T), int(rate)


def inspect_audio(path: str | os.PathLike, max_seconds: float) -> tuple[int, int, float]:
    """(sample rate, channels, seconds) of a usable clip; AudioError for one that is too short,
    too long, silent, not finite or unreadable. Decodes a block at a time, so it costs little memory
    whatever the file."""
    frames, sounds = 0, False
    with _opened(path, max_seconds) as handle:
        rate, channels, limit = handle.samplerate, handle.channels, (max_seconds + SLACK_SECONDS) * handle.samplerate
        for block in handle.blocks(BLOCK_FRAMES, dtype="float32", always_2d=True):
            frames += len(block)
            if frames > limit:
                raise AudioError(path, f"longer than {max_seconds:g} s (more samples than its header says)")
            if problem := _sample_problem(block):
                raise AudioError(path, problem)
            sounds = sounds or bool(block.any())
    if frames == 0:
        raise AudioError(path, "no samples")
    seconds = frames / rate
    if seconds < MIN_SECONDS:
        raise AudioError(path, f"too short ({frames} samples, under {MIN_SECONDS * 1000:.0f} ms)")
    if not sounds:
        raise AudioError(path, "silent (every sample is zero)")
    return rate, channels, seconds


def to_mono(audio: torch.Tensor) -> torch.Tensor:
    """Average channels: (channels, samples) -> (samples,)."""
    return audio.mean(dim=0) if audio.dim() == 2 else audio


def resample(audio: torch.Tensor, rate: int, target_rate: int) -> torch.Tensor:
    """Resample along the last axis; a no-op when the rates match."""
    if rate == target_rate:
        return audio
    return AF.resample(audio, rate, target_rate)


def fit_length(audio: torch.Tensor, length: int) -> torch.Tensor:
    """Cut or right-pad with zeros along the last axis to exactly `length` samples."""
    n = audio.shape[-1]
    if n >= length:
        return audio[..., :length]
    return torch.nn.functional.pad(audio, (0, length - n))


def load_mono(path: str | os.PathLike, target_rate: int) -> torch.Tensor:
    """Read a file, mix to mono and resample: a float32 tensor of shape (samples,)."""
    data, rate = read_audio(path)
    return resample(to_mono(torch.from_numpy(data)), rate, target_rate)


def write_audio(path: str | os.PathLike, audio: np.ndarray, rate: int, subtype: str = "PCM_16") -> None:
    """Write (samples,) or (channels, samples) audio as a WAV file, atomically."""
    data = np.asarray(audio)
    data = data.T if data.ndim == 2 else data
    channels = 1 if data.ndim == 1 else data.shape[1]
    with atomic_output(path) as tmp, sf.SoundFile(str(tmp), "w", rate, channels, subtype, format="WAV") as handle:
        # Float WAVs otherwise get a PEAK chunk stamped with the time of writing: same audio, other bytes.
        sf._snd.sf_command(handle._file, SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, sf._snd.SF_FALSE)
        handle.write(data)
