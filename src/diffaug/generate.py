"""Diffusion interpolation: invert two same-class clips to noise with deterministic DDIM, slerp the
noises, decode, and turn the mel image back into audio.

Work is batched: each source clip is inverted once and its noise reused by every pair that draws
it, images stay float, Griffin-Lim runs in torch on the model's device, and WAVs are written batch
by batch so memory depends on the batch size, not on how many clips are asked for.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from .audio import fit_length, load_mono, resample, write_audio
from .checkpoint import fingerprint
from .devices import autocast, resolve_device, runtime_signature
from .diffusion import class_count, mel_spec_of, pipeline_classes
from .features import FeatureExtractor, FeatureSpec, require_input_length
from .files import atomic_output, folders_in_turn
from .mel_image import MelImager, MelSpec
from .pairs import generated_set_seed, pair_clips
from .schema import settings_of

log = logging.getLogger(__name__)

GENERATED_COLUMNS = ("file", "class", "source_a", "source_b", "recording_a", "recording_b", "alpha")
"""The columns of a class folder's pairs.csv: each generated clip's file, its pair's clips and the mix."""


def slerp(a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    """Spherical interpolation between matching rows of two batches."""
    flat_a, flat_b = a.flatten(1), b.flatten(1)
    cos = (flat_a * flat_b).sum(1) / (flat_a.norm(dim=1) * flat_b.norm(dim=1))
    theta = torch.arccos(cos.clamp(-1, 1)).view(-1, *[1] * (a.dim() - 1))
    sin = torch.sin(theta).clamp_min(1e-8)
    mixed = (torch.sin((1 - alpha) * theta) * a + torch.sin(alpha * theta) * b) / sin
    linear = (1 - alpha) * a + alpha * b  # nearly parallel noises: slerp tends to lerp
    return torch.where(theta < 1e-4, linear, mixed)


class Interpolator:
    """Deterministic DDIM inversion and decoding with one pipeline's UNet and scheduler; for a
    latent pipeline, images pass through the pipeline's autoencoder on the way in and out.

    `strength` is the fraction of the `steps`-step schedule walked, from the clean end: 1 inverts
    to pure noise (the published study's method); less stops at an intermediate noise level, which keeps more
    of the source clips and needs fewer passes. A class-conditional UNet works under the class
    `label`: inversion conditional, decoding guided by `guidance_scale` (classifier-free guidance:
    the conditional and empty-label passes in one batch; 1 is the conditional model alone)."""

    def __init__(
        self,
        pipeline,
        steps: int,
        device: torch.device,
        precision: str = "fp32",
        strength: float = 1.0,
        label: int | None = None,
        guidance_scale: float = 1.0,
    ):
        if not 0 < strength <= 1:
            raise ValueError(f"generate.strength must be in (0, 1], got {strength}")
        self.empty_label = class_count(pipeline.unet)
        if (label is None) != (self.empty_label == 0):
            raise ValueError("a class-conditional pipeline generates under a class label, an unconditional one without")
        if label is None and guidance_scale != 1:
            raise ValueError(
                "generate.guidance_scale needs a class-conditional pipeline (diffusion.conditioning: class)"
            )
        self.label, self.guidance_scale = label, guidance_scale
        self.unet = pipeline.unet.to(device).eval()
        self.vqvae = pipeline.vqvae.to(device).eval() if pipeline.vqvae is not None else None
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.scheduler = pipeline.scheduler
        self.scheduler.set_timesteps(steps)
        self.device, self.precision = device, precision
        alphas = self.scheduler.alphas_cumprod
        final = torch.as_tensor(self.scheduler.final_alpha_cumprod)
        stride = self.scheduler.config.num_train_timesteps // self.scheduler.num_inference_steps
        schedule = self.scheduler.timesteps.tolist()  # descending
        self.timesteps = schedule[len(schedule) - max(1, round(strength * len(schedule))) :]
        self.alpha = {t: alphas[t] for t in self.timesteps}
        self.alpha_prev = {t: alphas[t - stride] if t - stride >= 0 else final for t in self.timesteps}

    def _eps(self, x: torch.Tensor, t: int, guided: bool = False) -> torch.Tensor:
        """The UNet's noise prediction at `t`: unconditional, conditional, or (`guided`) with guidance."""
        with autocast(self.device, self.precision):
            if self.label is None:
                return self.unet(x, t).sample.float()
            labels = torch.full((len(x),), self.label, device=self.device)
            if not guided or self.guidance_scale == 1:
                return self.unet(x, t, class_labels=labels).sample.float()
            both = torch.cat([labels, torch.full_like(labels, self.empty_label)])
            conditional, empty = self.unet(torch.cat([x, x]), t, class_labels=both).sample.float().chunk(2)
        return empty + self.guidance_scale * (conditional - empty)

    @torch.inference_mode()
    def invert(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> the noise that DDIM decoding maps back to them."""
        x = images.to(self.device, torch.float32)
        if self.vqvae is not None:  # the latent's mean, not a sample: inversion stays deterministic
            x = self.vqvae.encode(x).latent_dist.mean * self.vqvae.config.scaling_factor
        for t in reversed(self.timesteps):
            eps = self._eps(x, t)
            a_prev, a_t = self.alpha_prev[t], self.alpha[t]
            x0 = (x - (1 - a_prev).sqrt() * eps) / a_prev.sqrt()
            x = a_t.sqrt() * x0 + (1 - a_t).sqrt() * eps
        return x

    @torch.inference_mode()
    def decode(self, noise: torch.Tensor) -> torch.Tensor:
        """Noise -> images in [-1, 1] through the scheduler's deterministic (eta 0) DDIM steps."""
        x = noise.to(self.device, torch.float32)
        for t in self.timesteps:
            x = self.scheduler.step(self._eps(x, t, guided=True), t, x, eta=0.0).prev_sample
        if self.vqvae is not None:
            x = self.vqvae.decode(x / self.vqvae.config.scaling_factor).sample
        return x

    def noise(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """`count` draws of the Gaussian noise that decoding the whole schedule starts from."""
        config = self.unet.config
        return torch.randn((count, config.in_channels, *_pair(config.sample_size)), generator=generator)


def _pair(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)


def source_slices(paths, spec: MelSpec) -> torch.Tensor:
    """(clips, slice samples): each file at the pipeline's rate, cut or padded to one mel slice."""
    return torch.stack([fit_length(load_mono(path, spec.sample_rate), spec.slice_samples) for path in paths])


def with_loudness(audio: torch.Tensor, rms: float) -> torch.Tensor:
    """`audio` scaled to an RMS level, then down to a 0.99 peak if it would clip."""
    audio = audio * rms / audio.pow(2).mean().sqrt().clamp_min(1e-8)
    return audio / max(1.0, float(audio.abs().max()) / 0.99)


def round_trip(audio: torch.Tensor, imager: MelImager, generator: torch.Generator | None = None) -> torch.Tensor:
    """(clips, slice samples) -> the same clips sent only through the mel image and Griffin-Lim, no
    diffusion, each at its own loudness: what the image alone keeps of a clip."""
    with torch.inference_mode():
        rebuilt = imager.image_to_audio(imager.audio_to_image(audio), generator)
    return torch.stack([with_loudness(b, float(a.pow(2).mean().sqrt())) for a, b in zip(audio, rebuilt)])


def round_trip_files(paths, spec: MelSpec, rate: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(clips, samples at `rate`): the files as the pipeline reads them (source_slices) through its
    mel image and Griffin-Lim (round_trip), resampled to `rate`."""
    rebuilt = round_trip(source_slices(paths, spec), MelImager(spec), generator)
    return resample(rebuilt, spec.sample_rate, rate)


def round_trip_features(
    pairs: pd.DataFrame,
    paths: pd.Series,
    spec: MelSpec,
    features: FeatureSpec,
    classes: Sequence[str],
    generator: torch.Generator,
    where: str,
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(features, class indices, pair names): classifier `features` of each pair's first clip (`paths`
    by clip id) after round_trip_files through `spec`'s mel image, class by class, a clip first in
    several pairs sent through once; `where` names the image where its clips are too short."""
    extractor = FeatureExtractor(features)
    xs, labels, names = [], [], []
    for class_name, class_pairs in pairs.groupby("class", sort=True):
        sources = sorted(set(class_pairs["source_a"]))
        rebuilt = round_trip_files(paths[sources], spec, features.sample_rate, generator)
        require_input_length(rebuilt.shape[-1], features, where)
        rebuilt_features = {clip: extractor.from_audio(audio) for clip, audio in zip(sources, rebuilt)}
        xs += [rebuilt_features[clip] for clip in class_pairs["source_a"]]
        labels += [classes.index(class_name)] * len(class_pairs)
        names += class_pairs["pair"].tolist()
    return torch.stack(xs), torch.tensor(labels), names


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class GenerateSettings:
    """What generate_class reads of the generate section (`device`: the setting, auto, cpu or cuda)."""

    steps: int
    strength: float
    alpha: float
    mode: str
    guidance_scale: float
    batch_size: int
    device: str
    precision: str
    quantize: bool
    seed: int

    @classmethod
    def from_config(cls, section: dict) -> GenerateSettings:
        """The settings of a generate section, with the schema's defaults for the keys it leaves out."""
        return settings_of(cls, "generate", section)


def decoding_settings(generate: dict, generated_set: int, pretrained: bool, mix: bool = True) -> GenerateSettings:
    """The generate section's settings for one generated set (its seed: generated_set_seed), at alpha 0
    without `mix` (a reconstruction), with 8-bit inputs for a `pretrained` pipeline, which learnt
    from 8-bit images."""
    settings = GenerateSettings.from_config(generate if mix else {**generate, "alpha": 0.0})
    return replace(
        settings, quantize=settings.quantize or pretrained, seed=generated_set_seed(settings.seed, generated_set)
    )


def class_pairs(pairs: pd.DataFrame, class_name: str, mix: bool = True) -> pd.DataFrame:
    """One class's rows of a pairs table; without `mix` (a reconstruction), each pair's first clip
    paired with itself."""
    of_class = pairs[pairs["class"] == class_name]
    return of_class if mix else of_class.assign(source_b=of_class["source_a"], recording_b=of_class["recording_a"])


def generate_classes(
    pipeline,
    model_dir: str | Path,
    manifest: pd.DataFrame,
    pairs: pd.DataFrame,
    class_dirs: list[str],
    settings: GenerateSettings,
    output_rate: int,
    mix: bool = True,
) -> None:
    """generate_class for each class folder of `class_dirs` (named by its class), one after another with
    one pipeline (loaded from `model_dir`), each class as it would be alone; a job stopped part way
    takes up the classes it finished (files.folders_in_turn) if the model's files, the source clips'
    files, the pairs and the settings are the same."""
    model_files = sorted(path for path in Path(model_dir).rglob("*") if path.is_file())
    sources = pair_clips(manifest, pairs)["path"]
    files = [(str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in [*model_files, *map(Path, sources)]]
    key = fingerprint(asdict(settings), pairs.to_dict("list"), output_rate, mix, files)

    classes = pipeline_classes(model_dir)

    def make(folder: Path, at: Path) -> None:
        of_class = class_pairs(pairs, folder.name, mix)
        label = class_label(classes, folder.name, model_dir)
        clips = pair_clips(manifest, of_class)
        generate_class(pipeline, clips, at, of_class, settings, output_rate, folder.name, label)

    made = folders_in_turn(class_dirs, key, make)
    if len(made) < len(class_dirs):
        log.info(
            "%d of %d classes were finished by an earlier run and kept", len(class_dirs) - len(made), len(class_dirs)
        )


def class_label(classes: list[str], class_name: str, model_dir: str | Path) -> int | None:
    """The label of `class_name` in a class-conditional pipeline's `classes` (None for an unconditional one)."""
    if not classes:
        return None
    if class_name not in classes:
        raise ValueError(f"{model_dir}: the pipeline is conditioned on classes {classes}, not on {class_name!r}")
    return classes.index(class_name)


def class_seed(seed: int, class_name: str) -> int:
    """The seed of a class's sampled noise: each class draws as it would alone."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{class_name}".encode()).digest()[:7], "big")


def generate_class(
    pipeline,
    clips: pd.DataFrame,
    out_dir: str | Path,
    pairs: pd.DataFrame,
    settings: GenerateSettings,
    output_rate: int,
    class_name: str,
    label: int | None = None,
) -> pd.DataFrame:
    """Write one generated WAV per row of `pairs` (pairs_table's columns) into `out_dir`, named by its
    pair, with a `pairs.csv` and a `generation.json` saying how and on which device; returns the
    written pairs. settings.mode interpolate slerps the inverted noises of the pair's two clips;
    sample decodes fresh noise through the whole schedule (class_seed), the pair giving only its
    loudness. A class-conditional pipeline works under the class's `label`."""
    device = resolve_device(settings.device, "generate.device")
    imager = MelImager(mel_spec_of(pipeline)).to(device)
    sampling = settings.mode == "sample"
    strength = 1.0 if sampling else settings.strength
    interpolator = Interpolator(
        pipeline, settings.steps, device, settings.precision, strength, label, settings.guidance_scale
    )
    by_id, how = clips.set_index("id"), "sampled" if sampling else f"from {len(clips)} clips"
    steps = f"{len(interpolator.timesteps)} of {settings.steps} DDIM steps"
    log.info("%s: %d pairs %s, %s on %s", class_name, len(pairs), how, steps, device)
    paths = by_id.loc[sorted(set(pairs["source_a"]) | set(pairs["source_b"])), "path"]
    if sampling:
        noise, loudness, rows = _sampled_noise(pairs, paths, imager.spec, interpolator, settings, class_name)
    else:
        noise, loudness = _invert_sources(paths, interpolator, imager, settings, class_name)
        rows = list(pairs[["pair", "source_a", "source_b"]].itertuples(index=False, name=None))
    table = pd.DataFrame(
        {
            "file": [f"{pair}.wav" for pair in pairs["pair"]],
            "class": class_name,
            "source_a": pairs["source_a"].to_numpy(),
            "source_b": pairs["source_b"].to_numpy(),
            "recording_a": by_id.loc[pairs["source_a"], "recording"].to_numpy(),
            "recording_b": by_id.loc[pairs["source_b"], "recording"].to_numpy(),
            "alpha": float("nan") if sampling else settings.alpha,
        },
        columns=list(GENERATED_COLUMNS),
    )
    with atomic_output(out_dir) as tmp:
        tmp.mkdir()
        _decode_pairs(rows, noise, loudness, interpolator, imager, settings, output_rate, tmp, class_name)
        table.to_csv(tmp / "pairs.csv", index=False)
        record = {"runtime": runtime_signature(device, interpolator.precision), "clips": len(table)}
        (tmp / "generation.json").write_text(json.dumps(record) + "\n")
    return table


def _invert_sources(
    paths: pd.Series, interpolator: Interpolator, imager: MelImager, settings: GenerateSettings, class_name: str
) -> tuple[dict, dict]:
    """({clip id: its DDIM noise}, {clip id: its RMS loudness}) of the source clips `paths` (by id),
    each inverted once, in batches."""
    noise, loudness = {}, {}
    device, chunks = interpolator.device, list(_batches(list(paths.index), settings.batch_size))
    for chunk in tqdm(chunks, desc=f"{class_name}: invert", mininterval=2):
        audio = source_slices(paths.loc[chunk], imager.spec)
        loudness.update(zip(chunk, audio.pow(2).mean(1).sqrt().tolist()))
        images = imager.audio_to_image(audio.to(device), quantize=settings.quantize) * 2 - 1
        noise.update(zip(chunk, interpolator.invert(images).cpu()))
    return noise, loudness


def _sampled_noise(
    pairs: pd.DataFrame,
    paths: pd.Series,
    spec: MelSpec,
    interpolator: Interpolator,
    settings: GenerateSettings,
    class_name: str,
) -> tuple[dict, dict, list]:
    """({pair: its fresh noise}, {pair: the mean RMS loudness of its two clips, read from `paths` by
    clip id}, decoding rows): each sampled clip is decoded as a "pair" of its own noise with itself."""
    generator = torch.Generator().manual_seed(class_seed(settings.seed, class_name))
    names = pairs["pair"].tolist()
    noise = dict(zip(names, interpolator.noise(len(names), generator)))
    level = dict(zip(paths.index, source_slices(paths, spec).pow(2).mean(1).sqrt().tolist()))
    loudness = {p: 0.5 * (level[a] + level[b]) for p, a, b in pairs[["pair", "source_a", "source_b"]].values}
    return noise, loudness, [(name, name, name) for name in names]


def _decode_pairs(
    rows: list[tuple[str, str, str]],
    noise: dict,
    loudness: dict,
    interpolator: Interpolator,
    imager: MelImager,
    settings: GenerateSettings,
    output_rate: int,
    folder: Path,
    class_name: str,
) -> None:
    """Decode the slerp of each (pair, source_a, source_b) row's two noises into `folder`/<pair>.wav,
    at `output_rate` and at the mean loudness of its sources, in batches; rows with the same two
    sources (a reconstruction's clip first in several pairs) are decoded once."""
    device, spec = interpolator.device, imager.spec
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    pairs_of: dict[tuple[str, str], list[str]] = {}
    for pair, source_a, source_b in rows:
        pairs_of.setdefault((source_a, source_b), []).append(pair)
    chunks = list(_batches(list(pairs_of), settings.batch_size))
    for chunk in tqdm(chunks, desc=f"{class_name}: decode", mininterval=2):
        a = torch.stack([noise[source_a] for source_a, _ in chunk])
        b = torch.stack([noise[source_b] for _, source_b in chunk])
        images = interpolator.decode(slerp(a, b, settings.alpha).to(device))
        audio = imager.image_to_audio((images + 1) / 2, generator).cpu()
        audio = resample(audio, spec.sample_rate, output_rate)
        for k, (source_a, source_b) in enumerate(chunk):
            clip = with_loudness(audio[k], 0.5 * (loudness[source_a] + loudness[source_b])).numpy()
            for pair in pairs_of[(source_a, source_b)]:
                write_audio(folder / f"{pair}.wav", clip, output_rate)
