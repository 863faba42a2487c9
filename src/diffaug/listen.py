"""A page to hear the clips: per class and pair, the real clips beside what each generator
makes of them, every clip with its spectrogram, audio and images embedded so that the file stands
alone (and opens inside the Snakemake report)."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from .audio import load_mono, resample
from .features import FeatureExtractor, FeatureSpec, load_feature_sets
from .mel_image import MelImager, MelSpec
from .plots import spectrogram_png

PAIRS_ON_PAGE = 20
"""Pairs on the page, at most; each adds a row of clips (about 8.5 kB of page per clip of 1 s), and
the whole page must stay small enough to open inside the single-file report."""


def pairs_on_page(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs the page plays: the first of each class, as many per class as PAIRS_ON_PAGE allows
    (two for ten classes), and with more classes than that, one each of the first PAIRS_ON_PAGE
    classes in sorted order."""
    classes = sorted(set(pairs["class"]))
    pairs_per_class = max(1, PAIRS_ON_PAGE // max(1, len(classes)))
    shown = pairs[pairs["class"].isin(classes[:PAIRS_ON_PAGE])]
    return shown.groupby("class", sort=True).head(pairs_per_class)


def heard_samples(mel: MelSpec | None, features: FeatureSpec) -> int:
    """Samples of each real clip on the page: as far as the generating pipeline reads it (one slice of
    its `mel` image), else as the classifier does."""
    return round(mel.slice_samples * features.sample_rate / mel.sample_rate) if mel else features.num_samples


@dataclass(frozen=True)
class PairSounds:
    """What the page plays of its pairs: each real clip and its round trip by clip id, the decoded WAVs
    (reconstruction, diffusion, sample) and the mel average by pair; an empty mapping leaves its players out."""

    real: dict[str, torch.Tensor]
    round_trip: dict[str, torch.Tensor]
    reconstruction: dict[str, Path]
    diffusion: dict[str, Path]
    mel_average: dict[str, torch.Tensor]
    sample: dict[str, Path] = field(default_factory=dict)


def real_sounds(
    pairs: list[dict], paths: pd.Series, features: FeatureSpec, mel: MelSpec | None, generator: torch.Generator
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """({clip id: its heard_samples}, {clip id: as much of its round trip}) of both clips of each pair
    (`paths` by clip id), at the classifier's rate; no round trips without the pipeline's `mel` image."""
    rate, length = features.sample_rate, heard_samples(mel, features)
    sources = list(dict.fromkeys(pair[f"source_{side}"] for pair in pairs for side in "ab"))
    real = {clip_id: load_mono(paths[clip_id], rate)[:length] for clip_id in sources}
    if not mel:
        return real, {}
    from .generate import round_trip_files  # diffusers: only where a round trip is heard

    audio = round_trip_files(paths[sources], mel, rate, generator)
    return real, {clip_id: a[: len(real[clip_id])] for clip_id, a in zip(sources, audio)}


def mel_average_sounds(
    pairs: list[dict], path: str, pairs_csv: str, features: FeatureSpec, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """{pair: its mel average (features_mel_average's file `path`) heard through the inverse of the
    classifier's mel bands and Griffin-Lim} of the `pairs` drawn from `pairs_csv`."""
    x, _, ids = load_feature_sets(path)["train"]
    row = {pair: i for i, pair in enumerate(ids)}
    if missing := [pair["pair"] for pair in pairs if pair["pair"] not in row]:
        raise ValueError(f"{path}: no mel average of pair {missing[0]} of {pairs_csv}; rerun features_mel_average")
    audio = FeatureExtractor(features).to_audio(x[torch.tensor([row[pair["pair"]] for pair in pairs])], generator)
    return {pair["pair"]: a for pair, a in zip(pairs, audio)}


OPUS_BITRATE = 32_000
"""Bits per second of each clip, as Ogg Opus: 4 kB per second, a tenth of a 16-bit WAV at 22,050 Hz.
The single-file Snakemake report frames the page as a base64 data: URL, which Chromium opens only
up to 2 MiB: a page up to about 1.57 MB. The demo's 140 clips of 1 s make 1.2 MB."""

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
"""The only sample rates Opus encodes."""

DISPLAY = {"y_res": 64, "n_fft": 1024, "hop_length": 256, "top_db": 80}
"""Spectrograms on the page: 64 mel bands, dB below each clip's loudest bin (as the mel images are) in
16 shades of 5 dB, drawn 2 pixels per frame and band (172 pixels per second at 22,050 Hz)."""


@dataclass(frozen=True)
class Clip:
    """One player on the page."""

    label: str
    sound: str  # a data: URL
    png: bytes
    seconds: float
    frames: int


@cache
def _display_imager(frames: int, rate: int) -> MelImager:
    return MelImager(MelSpec(x_res=frames, sample_rate=rate, **DISPLAY))  # its filterbank costs more than a clip


def display_image(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """(mels, frames) spectrogram of mono `audio` in [0, 1], in the mel images' convention."""
    return _display_imager(len(audio) // DISPLAY["hop_length"] + 1, rate).audio_to_image(audio[None])[0, 0]


def clip(label: str, audio: torch.Tensor, rate: int) -> Clip:
    """A player of mono `audio` at `rate`."""
    image = display_image(audio, rate)
    return Clip(label, opus_data_uri(audio, rate), spectrogram_png(image), len(audio) / rate, image.shape[1])


def opus_data_uri(audio: torch.Tensor, rate: int) -> str:
    """Mono `audio` at `rate` as a data: URL of an Ogg Opus file at OPUS_BITRATE, resampled to the
    lowest rate Opus takes at or above `rate` (24 kHz for 22,050 Hz); louder than full scale is
    scaled down to a 0.99 peak rather than clipped."""
    opus_rate = next((r for r in OPUS_RATES if r >= rate), OPUS_RATES[-1])
    data = resample(audio.float(), rate, opus_rate).numpy()
    data = data / max(1.0, float(np.abs(data).max(initial=0.0)) / 0.99)
    buffer = io.BytesIO()
    # libsndfile sets Opus's bitrate from the compression level: 6 + 250 x (1 - level) kbit/s
    level = 1 - (OPUS_BITRATE - 6000) / 250_000
    sf.write(buffer, data, opus_rate, format="OGG", subtype="OPUS", compression_level=level)
    return _data_uri("audio/ogg", buffer.getvalue())


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _cell(item: Clip) -> str:
    label = html.escape(item.label)
    return (
        f'<figure><figcaption>{label} <span class="seconds">{item.seconds:.2f} s</span></figcaption>'
        f'<audio controls preload="metadata" title="{label}" src="{item.sound}"></audio>'
        f'<img alt="spectrogram: {label}" width="{2 * item.frames}" height="{2 * DISPLAY["y_res"]}" '
        f'src="{_data_uri("image/png", item.png)}"></figure>'
    )


STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
p.note { max-width: 60em; }
section { margin-bottom: 2em; }
h2 { border-bottom: 1px solid #ccc; }
h3 { font-size: 0.95em; font-weight: normal; margin: 0.8em 0 0.3em; }
div.row { display: flex; flex-wrap: wrap; gap: 0.8em; }
figure { margin: 0; padding: 0.4em; background: #f5f5f5; border-radius: 4px; }
figcaption { font-size: 0.85em; margin-bottom: 0.2em; }
figure audio, figure img { display: block; }
figure audio { width: 200px; height: 32px; }
figure img { image-rendering: pixelated; margin-top: 0.3em; }
span.seconds { color: #777; }
"""


def page(title: str, notes: list[str], classes: dict[str, list[tuple[str, list[Clip]]]]) -> str:
    """The whole page: per class a section, per pair a heading (naming its clips) over a row of players."""
    parts = [
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        *(f'<p class="note">{html.escape(note)}</p>' for note in notes),
    ]
    for name, rows in classes.items():
        parts.append(f'<section id="{html.escape(name)}"><h2>{html.escape(name.replace("_", " "))}</h2>')
        for heading, clips in rows:
            parts.append(f'<h3>{html.escape(heading)}</h3><div class="row">')
            parts += [_cell(item) for item in clips]
            parts.append("</div>")
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _pair_players(pair: dict, sounds: PairSounds, rate: int) -> list[Clip]:
    """The players of one pair: A and B real, each with its round trip, A's reconstruction, the
    interpolation and the mel average, as far as `sounds` holds them."""
    clips = []
    for side in "AB":
        clip_id = pair[f"source_{side.lower()}"]
        clips.append(clip(f"{side}: real", sounds.real[clip_id], rate))
        if sounds.round_trip:
            clips.append(clip(f"{side}: round trip", sounds.round_trip[clip_id], rate))
        if sounds.reconstruction and side == "A":
            clips.append(clip("A: reconstruction", load_mono(sounds.reconstruction[pair["pair"]], rate), rate))
    if sounds.diffusion:
        clips.append(clip("diffusion: A to B", load_mono(sounds.diffusion[pair["pair"]], rate), rate))
    if sounds.mel_average:
        clips.append(clip("mel average of A and B", sounds.mel_average[pair["pair"]], rate))
    if sounds.sample:
        clips.append(clip("sampled: the class from noise", load_mono(sounds.sample[pair["pair"]], rate), rate))
    return clips


def _pair_heading(pair: dict) -> str:
    return (
        f"pair {pair['pair']}: A = {pair['source_a']} (recording {pair['recording_a']}), "
        f"B = {pair['source_b']} (recording {pair['recording_b']})"
    )


def listening_page(
    generated_set: tuple[str, str],
    drawn: pd.DataFrame,
    pairs: list[dict],
    sounds: PairSounds,
    mel: MelSpec | None,
    features: FeatureSpec,
) -> str:
    """The page of one generated set ((split, set), its pairs table `drawn`): per class, a row of
    players of each of its `pairs` on the page (pairs_on_page), then notes on what each clip is."""
    classes: dict[str, list] = {}
    for pair in pairs:
        classes.setdefault(pair["class"], []).append(
            (_pair_heading(pair), _pair_players(pair, sounds, features.sample_rate))
        )
    split, set_number = generated_set
    shown = (max(map(len, classes.values())), len(classes), drawn["class"].nunique())
    made = (bool(sounds.diffusion), bool(sounds.mel_average), bool(sounds.reconstruction), bool(sounds.sample))
    seconds = heard_samples(mel, features) / features.sample_rate
    notes = explanations(split, set_number, shown, seconds, mel, features, *made)
    return page(f"Listen: split {split}, generated set {set_number}", notes, classes)


DECODED_NOTES = (
    "Reconstruction: A inverted to noise and decoded again by the diffusion model with nothing mixed in, as the "
    "reconstruct rule wrote it: what the model keeps of a clip before any interpolation.",
    "Diffusion: the pair's interpolated clip, as the interpolate rule wrote it.",
    "Sampled: a clip of the pair's class drawn from fresh noise by the class-conditional model (the sample rule's, or "
    "the interpolate rule's in generate.mode sample); A and B give it only its loudness.",
)
"""The page's notes on the clips that the diffusion model decoded: reconstruction, interpolation, sample."""


def explanations(
    split: str,
    set_number: str,
    shown: tuple[int, int, int],
    seconds: float,
    mel: MelSpec | None,
    features,
    diffusion: bool,
    mel_average: bool,
    reconstruction: bool = False,
    sample: bool = False,
) -> list[str]:
    """The page's notes: what each clip is. `shown` is (pairs per class, classes on the page, classes in
    the set); `features` is the classifier's FeatureSpec."""
    pairs_per_class, classes, total = shown
    which = f"each of the first {classes} of its {total} classes (sorted)" if classes < total else "each class"
    notes = [
        f"Split {split}, generated set {set_number}: the first {pairs_per_class} pair(s) of {which}. A and B are "
        f"the pair's two real training clips, from different recordings; each plays its first {seconds:.2f} s, "
        + ("as the diffusion pipeline reads it (one mel slice)." if mel else "as the classifier reads it."),
    ]
    if mel:
        notes.append(
            f"Round trip: the real clip sent only through the pipeline's {mel.x_res} x {mel.y_res} mel image and "
            "Griffin-Lim, no diffusion: what the image alone keeps. Griffin-Lim starts from random phases, so "
            "these are fresh round trips of the clips, not byte for byte the ones the round_trip rows scored."
        )
    notes += [note for made, note in zip((reconstruction, diffusion, sample), DECODED_NOTES) if made]
    if mel_average:
        notes.append(
            "Mel average: the average, in power, of A's and B's classifier mel spectrograms "
            f"({features.n_mels} bands, the first {features.num_samples / features.sample_rate:.2f} s), which the "
            "mel_average arm trains on. It "
            "has no audio of its own, so it is heard through a least-squares inverse of the mel bands and "
            "Griffin-Lim, which add a roughness of their own."
        )
    notes.append(
        f"Spectrograms: {DISPLAY['y_res']} mel bands, low bands at the bottom, in dB down to {DISPLAY['top_db']} "
        "below each clip's loudest bin."
    )
    return notes
