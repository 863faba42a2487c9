"""A page to hear the clips: per class and pair, the real clips beside what each generating source
makes of them, every clip with its spectrogram, audio and images embedded so that the file stands
alone (and opens inside the Snakemake report)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from functools import cache

import torch

from .audio import wav_bytes
from .mel_image import MelImager, MelSpec
from .plots import spectrogram_png

PAIRS_PER_CLASS = 2
"""Pairs per class on the page; each adds a row of clips (16-bit WAVs: 44 kB per second at 22,050 Hz)."""

DISPLAY = {"y_res": 64, "n_fft": 1024, "hop_length": 256, "top_db": 80}
"""Spectrograms on the page: 64 mel bands, dB below each clip's loudest bin (as the mel images are),
drawn 2 pixels per frame and band (172 pixels per second at 22,050 Hz)."""


@dataclass(frozen=True)
class Clip:
    """One player on the page."""

    label: str
    wav: bytes
    png: bytes
    seconds: float
    frames: int


@cache
def _display_imager(frames: int, rate: int) -> MelImager:
    return MelImager(MelSpec(x_res=frames, sample_rate=rate, **DISPLAY))  # its filterbank costs more than a clip


def display_image(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """(mels, frames) spectrogram of mono `audio` in [0, 1], in the mel images' convention."""
    return _display_imager(len(audio) // DISPLAY["hop_length"] + 1, rate).audio_to_image(audio[None])[0, 0]


def clip(label: str, audio: torch.Tensor, rate: int, wav: bytes | None = None) -> Clip:
    """A player of mono `audio` at `rate`; `wav` the bytes of its file when it is one already."""
    image = display_image(audio, rate)
    return Clip(label, wav or wav_bytes(audio.numpy(), rate), spectrogram_png(image), len(audio) / rate, image.shape[1])


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _cell(item: Clip) -> str:
    label = html.escape(item.label)
    return (
        f'<figure><figcaption>{label} <span class="seconds">{item.seconds:.2f} s</span></figcaption>'
        f'<audio controls preload="metadata" title="{label}" src="{_data_uri("audio/wav", item.wav)}"></audio>'
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


def explanations(
    split: str,
    replicate: str,
    seconds: float,
    mel: MelSpec | None,
    features,
    diffusion: bool,
    mel_average: bool,
    reconstruction: bool = False,
) -> list[str]:
    """The page's notes: what each clip is. `features` is the classifier's FeatureSpec."""
    notes = [
        f"Split {split}, generated set {replicate}: the first {PAIRS_PER_CLASS} pairs of each class. A and B are "
        f"the pair's two real training clips, from different recordings; each plays its first {seconds:.2f} s, "
        + ("as the diffusion pipeline reads it (one mel slice)." if mel else "as the classifier reads it."),
    ]
    if mel:
        notes.append(
            f"Round trip: the real clip sent only through the pipeline's {mel.x_res} x {mel.y_res} mel image and "
            "Griffin-Lim, no diffusion: what the image alone keeps. Griffin-Lim starts from random phases, so "
            "these are fresh round trips of the clips, not byte for byte the ones the round_trip rows scored."
        )
    if reconstruction:
        notes.append(
            "Reconstruction: A inverted to noise and decoded again by the diffusion model with nothing mixed in, as "
            "the reconstruct rule wrote it: what the model keeps of a clip before any interpolation."
        )
    if diffusion:
        notes.append("Diffusion: the pair's interpolated clip, as the interpolate rule wrote it.")
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
