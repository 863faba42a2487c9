"""The tests' fixtures; what they share besides lives in helpers.py."""

import pandas as pd
import pytest
import torch
from helpers import TINY_MEL, TINY_UNET, class_list_file, snakemake

from diffaug.dataset import build_manifest
from diffaug.diffusion import build_unet, save_pipeline
from diffaug.synthetic import SyntheticSpec, write_synthetic_dataset


@pytest.fixture
def class_list(tmp_path) -> str:
    return class_list_file(tmp_path)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> tuple:
    """A synthetic dataset of 80 clips (4 recordings x 2 clips per class) and its manifest."""
    root = tmp_path_factory.mktemp("data") / "UrbanSound8K"
    write_synthetic_dataset(root, SyntheticSpec(recordings_per_class=4, clips_per_recording=2, seed=3), progress=False)
    return root, build_manifest(root)[0]


@pytest.fixture(scope="session")
def paired_dataset(tmp_path_factory) -> tuple:
    """A synthetic dataset of 120 clips (6 recordings x 2 clips per class) and its manifest: enough
    recordings outside fold 1 for pairs within each judge half."""
    root = tmp_path_factory.mktemp("paired") / "UrbanSound8K"
    write_synthetic_dataset(root, SyntheticSpec(recordings_per_class=6, clips_per_recording=2, seed=3), progress=False)
    return root, build_manifest(root)[0]


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory):
    """An untrained tiny audio-diffusion pipeline folder."""
    from diffusers import DDIMScheduler

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("pipe") / "model"
    save_pipeline(folder, build_unet(TINY_MEL, TINY_UNET), DDIMScheduler(clip_sample=False), TINY_MEL)
    return folder


@pytest.fixture
def manifest(tiny_dataset) -> pd.DataFrame:
    return tiny_dataset[1].copy()


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A complete run of the tiny config (config/ci.yaml)."""
    workdir = tmp_path_factory.mktemp("workflow")
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir
