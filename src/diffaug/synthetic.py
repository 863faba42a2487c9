"""A deterministic synthetic dataset of urban-sound-like clips in the exact UrbanSound8K layout.

Each class has its own sound model with parameters drawn per recording (fsID) and per clip, mixed
with coloured background noise and, sometimes, a faint event of another class, so that the classes
are learnable without being trivially separable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from .layouts import URBANSOUND8K_COLUMNS, URBANSOUND8K_METADATA, slice_file_name

SAMPLE_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
RATE_WEIGHTS = (0.05, 0.05, 0.1, 0.1, 0.05, 0.05, 0.35, 0.25)
SUBTYPES = ("PCM_U8", "PCM_16", "PCM_24", "FLOAT")
SUBTYPE_WEIGHTS = (0.1, 0.5, 0.25, 0.15)
MARKER = ".synthetic-dataset"


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and seed of the synthetic dataset."""

    recordings_per_class: int = 10
    clips_per_recording: int = 5
    seed: int = 0
    max_seconds: float = 4.0
    min_seconds: float = 0.1


# ---------------------------------------------------------------- signal helpers


def _band_noise(rng, n, sr, lo, hi, tilt=0.0):
    """White noise limited to [lo, hi] Hz with a spectral tilt of `tilt` dB per octave."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    gain = ((f >= lo) & (f <= hi)).astype(float)
    gain *= np.power(np.maximum(f, 1.0) / 1000.0, tilt / 6.02)
    out = np.fft.irfft(spectrum * gain, n)
    return out / (np.abs(out).max() + 1e-9)


def _harmonic(t, f0, amps, phase_rng):
    """Sum of harmonics of an instantaneous frequency track `f0` (Hz, array or scalar)."""
    sr_phase = 2 * np.pi * np.cumsum(np.broadcast_to(f0, t.shape)) * (t[1] - t[0] if len(t) > 1 else 0)
    return sum(a * np.sin(k * sr_phase + phase_rng.uniform(0, 2 * np.pi)) for k, a in enumerate(amps, start=1))


def _decay_bursts(t, onsets, tau):
    """An envelope of exponentially decaying bursts starting at `onsets` (seconds)."""
    env = np.zeros_like(t)
    for onset in onsets:
        after = t >= onset
        env[after] = np.maximum(env[after], np.exp(-(t[after] - onset) / tau))
    return env


def _gates(t, rng, on_range, off_range):
    """A 0/1 envelope of random on and off stretches with short ramps."""
    env = np.zeros_like(t)
    pos = rng.uniform(0, off_range[1])
    while pos < t[-1] + 1e-9:
        length = rng.uniform(*on_range)
        env[(t >= pos) & (t < pos + length)] = 1.0
        pos += length + rng.uniform(*off_range)
    ramp = max(1, int(0.01 / (t[1] - t[0]))) if len(t) > 1 else 1
    return np.convolve(env, np.ones(ramp) / ramp, mode="same")


# ---------------------------------------------------------------- one model per class
# Each takes (t, sr, rec, rng): rec holds the recording's parameters, rng draws the clip's own.


def _air_conditioner(t, sr, rec, rng):
    hum = _harmonic(t, rec["f0"] * rng.uniform(0.98, 1.02), [1, 0.5, 0.3, 0.15], rng)
    am = 1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t)
    return 0.4 * hum * am + _band_noise(rng, len(t), sr, 60, rec["cutoff"], tilt=-3)


def _car_horn(t, sr, rec, rng):
    f0 = rec["f0"] * rng.uniform(0.97, 1.03)
    tone = _harmonic(t, f0, [1, 0.8, 0.6, 0.5, 0.3, 0.2], rng)
    if rec["two_tone"]:
        tone = tone + _harmonic(t, f0 * 1.26, [0.8, 0.5, 0.3], rng)
    return tone * _gates(t, rng, (0.15, 1.2), (0.1, 0.6))


def _children_playing(t, sr, rec, rng):
    out = np.zeros_like(t)
    for _ in range(rec["voices"]):
        f0 = rng.uniform(250, 520) * (1 + 0.04 * np.sin(2 * np.pi * rng.uniform(4, 7) * t))
        glide = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 6))
        syllables = _gates(t, rng, (0.08, 0.35), (0.05, 0.4))
        out += _harmonic(t, f0 * glide, [1, 0.6, 0.4, 0.2], rng) * syllables
    return out + 0.3 * _band_noise(rng, len(t), sr, 300, 3000)


def _dog_bark(t, sr, rec, rng):
    onsets = np.sort(rng.uniform(0, max(t[-1] - 0.1, 0.0), rng.integers(1, 5)))
    env = _decay_bursts(t, onsets, rec["tau"])
    chirp = rec["f0"] * (1 + 0.5 * np.exp(-((t - onsets[0]) % 0.4) / 0.05))
    return env * (_harmonic(t, chirp, [1, 0.7, 0.5, 0.3], rng) + 0.5 * _band_noise(rng, len(t), sr, 300, 4000))


def _drilling(t, sr, rec, rng):
    f0 = rec["f0"] * (1 + 0.01 * rng.standard_normal())
    am = 1 + 0.6 * np.sin(2 * np.pi * rec["am"] * t)
    tone = _harmonic(t, f0, [1, 0.5, 0.25], rng) * am
    return tone * _gates(t, rng, (0.5, 3.0), (0.05, 0.4)) + 0.3 * _band_noise(rng, len(t), sr, 500, 6000)


def _engine_idling(t, sr, rec, rng):
    rate = rec["rate"] * rng.uniform(0.95, 1.05)
    pulses = _harmonic(t, rate, [1.0 / k for k in range(1, 16)], rng)
    return pulses + 0.6 * _band_noise(rng, len(t), sr, 30, 800, tilt=-4)


def _gun_shot(t, sr, rec, rng):
    onsets = np.sort(rng.uniform(0, max(t[-1] * 0.6, 0.0), rng.integers(1, 4)))
    crack = _decay_bursts(t, onsets, rec["tau"]) * _band_noise(rng, len(t), sr, 100, 8000, tilt=-1)
    thump = _decay_bursts(t, onsets, rec["tau"] * 3) * np.sin(2 * np.pi * rng.uniform(50, 90) * t)
    return crack + 0.5 * thump


def _jackhammer(t, sr, rec, rng):
    period = 1 / (rec["rate"] * rng.uniform(0.95, 1.05))
    onsets = np.arange(rng.uniform(0, period), t[-1] + period, period)
    hits = _decay_bursts(t, onsets, rec["tau"]) * _band_noise(rng, len(t), sr, 400, 5000)
    return hits * _gates(t, rng, (0.4, 3.0), (0.05, 0.5))


def _siren(t, sr, rec, rng):
    sweep = np.sin(2 * np.pi * rec["rate"] * t + rng.uniform(0, 2 * np.pi))
    f0 = rec["f_lo"] + (rec["f_hi"] - rec["f_lo"]) * (0.5 + 0.5 * sweep)
    return _harmonic(t, f0, [1, 0.4, 0.2], rng)


def _street_music(t, sr, rec, rng):
    out = np.zeros_like(t)
    pos = 0.0
    while pos < t[-1] + 1e-9:
        length = rng.uniform(0.12, 0.5)
        note = rec["root"] * 2 ** (rng.choice([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
        span = (t >= pos) & (t < pos + length)
        out[span] += _harmonic(t[span], note, [1, 0.5, 0.3, 0.2], rng) * np.exp(-(t[span] - pos) / length)
        pos += length
    beat = _decay_bursts(t, np.arange(0, t[-1] + 1, 60 / rec["tempo"]), 0.04) * np.sin(2 * np.pi * 60 * t)
    return out + 0.7 * beat


SOUND_MODELS = {
    "air_conditioner": (_air_conditioner, lambda r: {"f0": r.uniform(45, 130), "cutoff": r.uniform(600, 2500)}),
    "car_horn": (_car_horn, lambda r: {"f0": r.uniform(330, 520), "two_tone": bool(r.integers(0, 2))}),
    "children_playing": (_children_playing, lambda r: {"voices": int(r.integers(2, 5))}),
    "dog_bark": (_dog_bark, lambda r: {"f0": r.uniform(300, 850), "tau": r.uniform(0.04, 0.12)}),
    "drilling": (_drilling, lambda r: {"f0": r.uniform(700, 2600), "am": r.uniform(20, 90)}),
    "engine_idling": (_engine_idling, lambda r: {"rate": r.uniform(18, 45)}),
    "gun_shot": (_gun_shot, lambda r: {"tau": r.uniform(0.03, 0.15)}),
    "jackhammer": (_jackhammer, lambda r: {"rate": r.uniform(8, 25), "tau": r.uniform(0.005, 0.02)}),
    "siren": (
        _siren,
        lambda r: {"f_lo": r.uniform(500, 800), "f_hi": r.uniform(1000, 1700), "rate": r.uniform(0.2, 3)},
    ),
    "street_music": (_street_music, lambda r: {"root": r.uniform(180, 400), "tempo": r.uniform(80, 140)}),
}
CLASSES = tuple(SOUND_MODELS)
"""The demo's class names in label order: UrbanSound8K's, whose layout the demo is written in."""


def _rms(x):
    return float(np.sqrt(np.mean(x**2)) + 1e-12)


def synthesize_clip(class_name: str, rec: dict, seconds: float, rate: int, salience: int, rng) -> np.ndarray:
    """One mono clip of a class: source, background noise and maybe a faint intruder of another class."""
    t = np.arange(max(1, int(round(seconds * rate)))) / rate
    model, _ = SOUND_MODELS[class_name]
    source = model(t, rate, rec, rng)
    snr_db = rng.uniform(3, 20) if salience == 1 else rng.uniform(-6, 6)
    background = _band_noise(rng, len(t), rate, 20, rate / 2, tilt=rng.uniform(-6, 0))
    mix = source / _rms(source) + background / _rms(background) * 10 ** (-snr_db / 20)
    if rng.random() < 0.3:
        other = CLASSES[(CLASSES.index(class_name) + rng.integers(1, len(CLASSES))) % len(CLASSES)]
        other_model, other_params = SOUND_MODELS[other]
        intruder = other_model(t, rate, other_params(rng), rng)
        mix += intruder / _rms(intruder) * 10 ** (-rng.uniform(6, 15) / 20)
    return mix / (np.abs(mix).max() + 1e-9) * rng.uniform(0.05, 0.9)


def synthesize_metadata(spec: SyntheticSpec, classes: tuple[str, ...] = CLASSES) -> pd.DataFrame:
    """The dataset's rows, with each recording's format and each clip's slice index; no audio is made here."""
    rows = []
    for class_id, class_name in enumerate(CLASSES):
        if class_name not in classes:
            continue
        class_rng = np.random.default_rng([spec.seed, class_id])
        folds = class_rng.permutation(np.arange(spec.recordings_per_class) % 10 + 1)
        for rec_index in range(spec.recordings_per_class):
            fs_id = 100000 + 1000 * class_id + rec_index
            rec_rng = np.random.default_rng([spec.seed, class_id, rec_index])
            rate = int(rec_rng.choice(SAMPLE_RATES, p=RATE_WEIGHTS))
            subtype = str(rec_rng.choice(SUBTYPES, p=SUBTYPE_WEIGHTS))
            channels = int(rec_rng.choice([1, 2], p=[0.6, 0.4]))
            start = 0.0
            for slice_index in range(spec.clips_per_recording):
                full = rec_rng.random() < 0.5
                seconds = spec.max_seconds if full else rec_rng.uniform(spec.min_seconds, spec.max_seconds)
                seconds = round(seconds, 3)
                rows.append(
                    {
                        "slice_file_name": slice_file_name(fs_id, class_id, slice_index),
                        "fsID": fs_id,
                        "start": round(start, 3),
                        "end": round(start + seconds, 3),
                        "salience": int(rec_rng.choice([1, 2], p=[0.65, 0.35])),
                        "fold": int(folds[rec_index]),
                        "classID": class_id,
                        "class": class_name,
                        "sample_rate": rate,
                        "subtype": subtype,
                        "channels": channels,
                        "slice": slice_index,
                    }
                )
                start += seconds + round(rec_rng.uniform(0.0, 2.0), 3)
    return pd.DataFrame(rows)


def write_synthetic_dataset(
    root: str | Path,
    spec: SyntheticSpec,
    progress: bool = True,
    classes: tuple[str, ...] = CLASSES,
    workers: int = 0,
) -> pd.DataFrame:
    """Write the dataset under `root` (audio/fold*/, metadata/UrbanSound8K.csv) and return its metadata;
    `workers` processes synthesize clips beside this one.

    `root` must be empty, absent, or a synthetic dataset written before (it is then replaced).
    """
    from .files import atomic_output, map_in_workers  # torch: not needed to plan a run

    root = Path(root)
    if root.exists() and any(p.is_file() for p in root.rglob("*")) and not (root / MARKER).exists():
        raise FileExistsError(f"{root}: not empty and not a synthetic dataset; refusing to overwrite it")
    meta = synthesize_metadata(spec, classes)
    with atomic_output(root) as staging:  # the whole dataset appears at once
        write = partial(_write_clip, spec=spec, folder=staging / "audio")
        for _ in map_in_workers(write, meta.to_dict("records"), workers, "synthesize" if progress else None):
            pass
        (staging / "metadata").mkdir(parents=True, exist_ok=True)
        meta[list(URBANSOUND8K_COLUMNS)].to_csv(staging / URBANSOUND8K_METADATA, index=False)
        (staging / MARKER).write_text(f"{spec}\n")
    return meta


def _write_clip(row: dict, spec: SyntheticSpec, folder: Path) -> int:
    """Synthesize and write one clip of the metadata; its sound comes from seeds of its recording and slice."""
    from .audio import write_audio

    name, fs_id = row["class"], row["fsID"]
    sound_params = SOUND_MODELS[name][1](np.random.default_rng([spec.seed, fs_id]))
    clip_rng = np.random.default_rng([spec.seed, fs_id, row["slice"] + 1])
    seconds = row["end"] - row["start"]
    mono = synthesize_clip(name, sound_params, seconds, row["sample_rate"], row["salience"], clip_rng)
    audio = mono[None] if row["channels"] == 1 else np.stack([mono, 0.8 * np.roll(mono, 7)])
    write_audio(
        folder / f"fold{row['fold']}" / row["slice_file_name"],
        audio.astype(np.float32),
        row["sample_rate"],
        row["subtype"],
    )
    return 0
