"""The training arms compared in the table: which extra clips each adds and whether it masks.

The arms that add clips form a ladder over the same pairs table, each adding as many clips:
round_trip (a pair's first clip through the diffusion pipeline's mel image and Griffin-Lim only),
reconstruction (that clip also inverted and decoded by the diffusion model, unmixed), diffusion (the
pair's two clips interpolated), sample (a clip of the pair's class drawn from noise by a class-conditional
model, at the pair's loudness); mel_average mixes the pair without any image or model. A gain that appears
at a rung and not below it comes from what that rung adds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    generator: str | None  # what makes the clips it adds (see GENERATORS), or None (real clips only)
    specaugment: bool


ARMS = {
    "baseline": Arm(None, False),
    "round_trip": Arm("round_trip", False),
    "reconstruction": Arm("reconstruction", False),
    "diffusion": Arm("diffusion", False),
    "diffusion_sample": Arm("sample", False),
    "mel_average": Arm("mel_average", False),
    "specaugment": Arm(None, True),
    "diffusion_specaugment": Arm("diffusion", True),
}

GENERATORS = ("round_trip", "reconstruction", "diffusion", "sample", "mel_average")
"""What makes generated clips, in the ladder's order: one clip per pair each."""

IMAGE_GENERATORS = ("round_trip", "reconstruction", "diffusion", "sample")
"""The generators whose clips come out of the diffusion pipeline's mel image, one slice long."""

MODEL_GENERATORS = ("reconstruction", "diffusion", "sample")
"""The generators whose clips the diffusion model decodes (written as WAVs per class by a generating rule)."""


def heard_as(generator: str, mode: str) -> str:
    """What a model generator's clips are to a listener under `generate.mode`: in mode sample the
    diffusion arm's clips are drawn from noise, as the sample generator's are."""
    return "sample" if generator == "diffusion" and mode == "sample" else generator
