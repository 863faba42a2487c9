"""Diffusion-augmented audio classification: the library behind the Snakemake workflow."""

CLASSES = (
    "air_conditioner",
    "car_horn",
    "children_playing",
    "dog_bark",
    "drilling",
    "engine_idling",
    "gun_shot",
    "jackhammer",
    "siren",
    "street_music",
)
"""UrbanSound8K class names in classID order."""

__version__ = "0.1.0"
