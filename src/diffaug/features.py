"""Classifier inputs: by default exactly as the published study built them, 1 s mono at 22,050 Hz and
a 64-band power mel (no log).

`num_samples` sets the length: 22050 is the published 1 s, 88200 a whole 4 s UrbanSound8K clip
(shorter clips are right-padded with silence). `log: true` gives the mel in dB instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torchaudio

from .audio import fit_length, load_mono
from .files import load_tensors, map_in_workers, save_tensors
from .finite import require_finite_rows
from .mel_image import griffin_lim, mel_to_linear
from .mel_spec import MelSpec
from .schema import input_frames


@dataclass(frozen=True)
class FeatureSpec:
    sample_rate: int = 22050
    num_samples: int = 22050
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 64
    log: bool = False
    """dB: 10 log10(power), floored at 1e-10 and at TOP_DB below the clip's peak; False keeps power."""

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1, self.n_mels, input_frames(asdict(self)))


TOP_DB = 80.0
"""Dynamic range of log features below each clip's peak, as the diffusion model's mel images have."""


class FeatureExtractor:
    """Turns audio files into (1, n_mels, frames) mel tensors: power, or dB with `spec.log`."""

    def __init__(self, spec: FeatureSpec = FeatureSpec()):
        self.spec = spec
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=spec.sample_rate, n_fft=spec.n_fft, hop_length=spec.hop_length, n_mels=spec.n_mels
        )
        self.to_db = torchaudio.transforms.AmplitudeToDB("power", top_db=TOP_DB) if spec.log else None

    def from_audio(self, mono: torch.Tensor) -> torch.Tensor:
        """Features of mono audio already at the spec's sample rate."""
        power = self.mel(fit_length(mono, self.spec.num_samples)).unsqueeze(0)
        return self.to_db(power) if self.to_db is not None else power

    def from_file(self, path) -> torch.Tensor:
        return self.from_audio(load_mono(path, self.spec.sample_rate))

    def to_audio(self, features: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch, 1, n_mels, frames) features -> (batch, num_samples) audio: the mel inverted by least
        squares, the phase by Griffin-Lim. What features made without audio (mel averages) sound like."""
        spec = self.spec
        if 2 * spec.hop_length > spec.n_fft:
            raise ValueError(
                f"features.hop_length {spec.hop_length} is over half of n_fft {spec.n_fft}: "
                "Griffin-Lim cannot turn such features back into audio"
            )
        power = torch.pow(10.0, features / 10) if spec.log else features
        linear = mel_to_linear(power.squeeze(1).float(), self.mel.mel_scale.fb)
        frames = MelSpec(features.shape[-1], spec.n_mels, spec.sample_rate, spec.n_fft, spec.hop_length)
        audio = griffin_lim(linear.sqrt(), torch.hann_window(spec.n_fft), frames, generator)
        return audio[..., : spec.num_samples]

    def from_files(self, paths: Sequence, desc: str | None = "features", workers: int = 0) -> torch.Tensor:
        """Features of every file, in order; `workers` processes decode and transform beside this one."""
        out = torch.empty((len(paths), *self.spec.shape))
        for i, x in enumerate(map_in_workers(self.from_file, list(paths), workers, desc)):
            out[i] = x
        return out


def require_input_length(samples: int, spec: FeatureSpec, where) -> None:
    """Refuse generated clips of `samples` (at the features' rate) shorter than the classifier's
    input: the silence padding them would mark every generated clip."""
    if samples < spec.num_samples:
        rate = spec.sample_rate
        raise ValueError(
            f"{where}: generated clips last {samples / rate:.2f} s, shorter than the classifier's "
            f"{spec.num_samples / rate:.2f} s input (features.num_samples); the silence after them would mark "
            "every generated clip: use a diffusion pipeline whose mel image covers the input, or shorten it"
        )


def pair_averages(
    x: torch.Tensor, ids: list[str], source_a: Sequence[str], source_b: Sequence[str], spec: FeatureSpec
) -> torch.Tensor:
    """The average of each pair's two classifier mel spectrograms (rows of `x`, made with `spec` and
    named by `ids`), taken in power, as a mix of the two sounds would be: with `spec.log`, the dB
    features go back to power first and the average to dB after (averaging dB would be a geometric
    mean). Augmentation without any diffusion model or image."""
    row = {clip: i for i, clip in enumerate(ids)}
    a = x[torch.tensor([row[clip] for clip in source_a], dtype=torch.long)]
    b = x[torch.tensor([row[clip] for clip in source_b], dtype=torch.long)]
    if not spec.log:
        return (a + b) / 2
    power = (torch.pow(10.0, a.double() / 10) + torch.pow(10.0, b.double() / 10)) / 2
    return FeatureExtractor(spec).to_db(power).float()


def save_feature_sets(path, sets: dict[str, tuple[torch.Tensor, torch.Tensor, list[str]]]) -> None:
    """Save named sets of (features, labels, ids) to one safetensors file; features that are not
    finite are refused, naming their clips."""
    tensors = {}
    for name, (x, y, ids) in sets.items():
        require_finite_rows(x, ids, path)
        tensors[f"{name}.x"], tensors[f"{name}.y"] = x, y.to(torch.int64)
    save_tensors(path, tensors, {name: ids for name, (_, _, ids) in sets.items()})


def load_feature_sets(path) -> dict[str, tuple[torch.Tensor, torch.Tensor, list[str]]]:
    tensors, ids = load_tensors(path)
    return {name: (tensors[f"{name}.x"], tensors[f"{name}.y"], ids[name]) for name in ids}


def with_added_sets(x: torch.Tensor, y: torch.Tensor, paths: Sequence) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Training features and labels (x, y) followed by the `train` set of each feature file in `paths`,
    and how many clips those add."""
    added = 0
    for path in paths:
        more_x, more_y, _ = load_feature_sets(path)["train"]
        x, y, added = torch.cat([x, more_x]), torch.cat([y, more_y]), added + len(more_x)
    return x, y, added


def first_clips(path, pairs, classes: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The rows of a dataset's feature file (set "all") of each pair's first clip, labelled with its
    class and named by its pair (`pairs`: a pairs table indexed by pair)."""
    x, _, ids = load_feature_sets(path)["all"]
    row = {clip: i for i, clip in enumerate(ids)}
    labels = torch.tensor([classes.index(c) for c in pairs["class"]])
    return x[torch.tensor([row[c] for c in pairs["source_a"]])], labels, pairs.index.tolist()


def select_parts(
    path, split: dict, parts=("train", "val", "test")
) -> dict[str, tuple[torch.Tensor, torch.Tensor, list[str]]]:
    """The rows of a dataset's feature file (one set, "all") that a split puts in each part."""
    x, y, ids = load_feature_sets(path)["all"]
    row = {clip: i for i, clip in enumerate(ids)}
    missing = [clip for part in parts for clip in split[part] if clip not in row]
    if missing:
        raise ValueError(
            f"{path}: no features for {len(missing)} clip(s) of split {split['split']} (first: {missing[0]}); "
            "the features and the split come from different manifests"
        )
    selected = {}
    for part in parts:
        index = torch.tensor([row[clip] for clip in split[part]], dtype=torch.int64)
        selected[part] = (x[index], y[index], list(split[part]))
    return selected
