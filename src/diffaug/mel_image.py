"""Audio <-> mel-spectrogram images in the audio-diffusion convention, in torch on any device.

An image is (batch, 1, y_res mels, x_res frames) with values in [0, 1]: decibels relative to the
image's loudest bin, floored at -top_db. Pipelines store them as 8-bit greyscale; here they stay
float unless `quantize` asks for the 8-bit round trip.
"""

from __future__ import annotations

import torch
import torchaudio

from .audio import fit_length
from .mel_spec import MelSpec

__all__ = ["MelImager", "MelSpec", "griffin_lim", "mel_to_linear"]


class MelImager(torch.nn.Module):
    """Converts batches of mono audio to mel images and back (Griffin-Lim)."""

    def __init__(self, spec: MelSpec):
        super().__init__()
        self.spec = spec
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=spec.sample_rate,
            n_fft=spec.n_fft,
            hop_length=spec.hop_length,
            n_mels=spec.y_res,
            power=2.0,
            norm="slaney",
            mel_scale="slaney",
            pad_mode="constant",
        )
        self.register_buffer("window", torch.hann_window(spec.n_fft), persistent=False)

    def audio_to_image(self, audio: torch.Tensor, quantize: bool = False) -> torch.Tensor:
        """(batch, samples) -> (batch, 1, y_res, x_res) in [0, 1]; audio is cut or padded to one slice."""
        power = self.mel(fit_length(audio, self.spec.slice_samples))
        db = 10 * torch.log10(power.clamp_min(1e-10))
        db = db - db.amax(dim=(-2, -1), keepdim=True)
        image = (db.clamp_min(-self.spec.top_db) + self.spec.top_db) / self.spec.top_db
        image = image.unsqueeze(1)
        return torch.round(image * 255) / 255 if quantize else image

    def image_to_audio(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch, 1, y_res, x_res) in [0, 1] -> (batch, slice samples), peak-relative loudness."""
        db = image.squeeze(1).float().clamp(0, 1) * self.spec.top_db - self.spec.top_db
        return griffin_lim(self.mel_to_linear(torch.pow(10.0, db / 10)).sqrt(), self.window, self.spec, generator)

    def mel_to_linear(self, power: torch.Tensor, iterations: int = 50) -> torch.Tensor:
        """(batch, mels, frames) mel power -> (batch, freq, frames) linear power."""
        return mel_to_linear(power, self.mel.mel_scale.fb, iterations)


def mel_to_linear(power: torch.Tensor, fb: torch.Tensor, iterations: int = 50) -> torch.Tensor:
    """(batch, mels, frames) mel power -> (batch, freq, frames) linear power: the non-negative
    least-squares inverse of the (freq, mels) filterbank `fb`, by multiplicative updates."""
    target = fb @ power
    linear = target.clone()
    for _ in range(iterations):
        linear = linear * target / (fb @ (fb.T @ linear)).clamp_min(1e-12)
    return linear


def griffin_lim(magnitude: torch.Tensor, window: torch.Tensor, spec: MelSpec, generator=None, momentum=0.99):
    """Fast Griffin-Lim phase recovery for (batch, freq, frames) magnitudes."""
    length = spec.slice_samples
    istft = dict(n_fft=spec.n_fft, hop_length=spec.hop_length, window=window, center=True)
    phase = torch.rand(magnitude.shape, generator=generator, device=magnitude.device) * 2 * torch.pi
    angles = torch.polar(torch.ones_like(magnitude), phase)
    previous = torch.zeros_like(angles)
    for _ in range(spec.n_iter):
        audio = torch.istft(magnitude * angles, length=length, **istft)
        rebuilt = torch.stft(audio, return_complex=True, pad_mode="constant", **istft)
        angles = rebuilt - previous * (momentum / (1 + momentum))
        angles = angles / angles.abs().clamp_min(1e-16)
        previous = rebuilt
    return torch.istft(magnitude * angles, length=length, **istft) * _edge_taper(window, spec, magnitude.shape[-1])


def _edge_taper(window: torch.Tensor, spec: MelSpec, frames: int) -> torch.Tensor:
    """Gain that tames the slice's last samples: only the tail of the last window covers them, and
    the inverse STFT divides by that near-zero window sum, which would leave a loud click."""
    square = window.pow(2).view(1, 1, -1)
    envelope = torch.nn.functional.conv_transpose1d(square.new_ones(1, 1, frames), square, stride=spec.hop_length)
    envelope = envelope.flatten()[spec.n_fft // 2 :][: spec.slice_samples]
    floor = 0.1 * envelope.max()
    return (envelope / floor).clamp(max=1.0)
