"""Audio file I/O (soundfile) and the resampling and mixing every stage shares."""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from .files import atomic_output

SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile's command number


MAX_SECONDS_READ = 600.0
"""Longest audio read at all: a header claiming more is refused before any sample is read."""
MIN_SECONDS = 0.01


class AudioError(ValueError):
    """An audio file that cannot be used; `reason` says why, the message names the file too."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a file as float32 of shape (channels, samples) and its sample rate."""
    try:
        with sf.SoundFile(str(path)) as handle:
            if handle.frames > MAX_SECONDS_READ * handle.samplerate:
                raise AudioError(path, f"header claims {handle.frames} frames, over {MAX_SECONDS_READ:.0f} s")
            data = handle.read(dtype="float32", always_2d=True)
            rate = handle.samplerate
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises several types for broken files
        raise AudioError(path, f"unreadable audio ({type(exc).__name__}: {exc})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "no samples")
    if not np.isfinite(data).all():
        raise AudioError(path, "NaN or infinite samples")
    return np.ascontiguousarray(data.T), int(rate)


def inspect_audio(path: str | os.PathLike, max_seconds: float) -> tuple[int, int, float]:
    """(sample rate, channels, seconds) of a usable clip; AudioError for one that is too short,
    too long, silent or unreadable."""
    data, rate = read_audio(path)
    seconds = data.shape[1] / rate
    if seconds < MIN_SECONDS:
        raise AudioError(path, f"too short ({data.shape[1]} samples, under {MIN_SECONDS * 1000:.0f} ms)")
    if seconds > max_seconds + 0.01:
        raise AudioError(path, f"longer than {max_seconds:g} s ({seconds:.2f} s)")
    if not data.any():
        raise AudioError(path, "silent (every sample is zero)")
    return rate, data.shape[0], seconds


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
