"""The mel settings of an audio-diffusion pipeline, apart from the torch code that uses them, so that
checking a config imports no torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class MelSpec:
    """The fields of an audio-diffusion pipeline's `mel_config.json`."""

    x_res: int = 256
    y_res: int = 256
    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    top_db: int = 80
    n_iter: int = 32

    def __post_init__(self):
        if 2 * self.hop_length > self.n_fft:
            raise ValueError(
                f"mel hop_length {self.hop_length} must be at most half of n_fft {self.n_fft}:"
                " Griffin-Lim cannot rebuild audio from windows that overlap less"
            )

    @property
    def slice_samples(self) -> int:
        """Samples that make exactly `x_res` frames (the audio-diffusion slice length)."""
        return self.x_res * self.hop_length - 1

    @classmethod
    def from_config(cls, config: dict) -> MelSpec:
        return cls(**{k: config[k] for k in asdict(cls()) if k in config})
