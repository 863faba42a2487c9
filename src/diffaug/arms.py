"""The training arms compared in the table: which extra clips each adds and whether it masks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    generated: str | None  # "diffusion", "mel_average" or None (real clips only)
    specaugment: bool


ARMS = {
    "baseline": Arm(None, False),
    "diffusion": Arm("diffusion", False),
    "mel_average": Arm("mel_average", False),
    "specaugment": Arm(None, True),
    "diffusion_specaugment": Arm("diffusion", True),
}
"""mel_average uses the same pairs as diffusion but averages their mel spectrograms: no diffusion
model at all, so it tells whether the model is what helps."""
