"""Classifier inputs exactly as the seed built them: 1 s mono at 22,050 Hz, a 64-band power mel (no log)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torchaudio
from tqdm.auto import tqdm

from .audio import fit_length, load_mono
from .files import load_tensors, save_tensors


@dataclass(frozen=True)
class FeatureSpec:
    sample_rate: int = 22050
    num_samples: int = 22050
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 64

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1, self.n_mels, 1 + self.num_samples // self.hop_length)


class FeatureExtractor:
    """Turns audio files into (1, n_mels, frames) power mel tensors."""

    def __init__(self, spec: FeatureSpec = FeatureSpec()):
        self.spec = spec
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=spec.sample_rate, n_fft=spec.n_fft, hop_length=spec.hop_length, n_mels=spec.n_mels
        )

    def from_audio(self, mono: torch.Tensor) -> torch.Tensor:
        """Features of mono audio already at the spec's sample rate."""
        return self.mel(fit_length(mono, self.spec.num_samples)).unsqueeze(0)

    def from_file(self, path) -> torch.Tensor:
        return self.from_audio(load_mono(path, self.spec.sample_rate))

    def from_files(self, paths: Sequence, desc: str = "features") -> torch.Tensor:
        out = torch.empty((len(paths), *self.spec.shape))
        with torch.inference_mode():
            for i, path in enumerate(tqdm(paths, desc=desc, mininterval=2)):
                out[i] = self.from_file(path)
        return out


def save_feature_sets(path, sets: dict[str, tuple[torch.Tensor, torch.Tensor, list[str]]]) -> None:
    """Save named sets of (features, labels, ids) to one safetensors file."""
    tensors = {}
    for name, (x, y, _) in sets.items():
        tensors[f"{name}.x"], tensors[f"{name}.y"] = x, y.to(torch.int64)
    save_tensors(path, tensors, {name: ids for name, (_, _, ids) in sets.items()})


def load_feature_sets(path) -> dict[str, tuple[torch.Tensor, torch.Tensor, list[str]]]:
    tensors, ids = load_tensors(path)
    return {name: (tensors[f"{name}.x"], tensors[f"{name}.y"], ids[name]) for name in ids}
