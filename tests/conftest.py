import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from diffaug.dataset import build_manifest, write_classes
from diffaug.diffusion import build_unet, save_pipeline
from diffaug.mel_image import MelSpec
from diffaug.synthetic import CLASSES, SyntheticSpec, write_synthetic_dataset

TINY_MEL = MelSpec(x_res=16, y_res=16, sample_rate=22050, n_fft=1024, hop_length=512, top_db=80, n_iter=4)
TINY_UNET = {"block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4}


def class_list_file(folder: Path) -> str:
    """classes.txt of the synthetic datasets in `folder`, as the manifest rule writes it."""
    write_classes(Path(folder) / "classes.txt", CLASSES)
    return str(Path(folder) / "classes.txt")


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


def save_latent_pipeline(folder):
    """A tiny latent audio-diffusion pipeline: an AutoencoderKL halves 16 x 16 mel images to 8 x 8."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DModel

    torch.manual_seed(0)
    vqvae = AutoencoderKL(
        in_channels=1,
        out_channels=1,
        latent_channels=1,
        block_out_channels=(8, 8),
        norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=16,
    )
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        layers_per_block=1,
        down_block_types=("DownBlock2D",) * 2,
        up_block_types=("UpBlock2D",) * 2,
    )
    save_pipeline(folder, unet, DDIMScheduler(), TINY_MEL, vqvae=vqvae)


@pytest.fixture
def manifest(tiny_dataset) -> pd.DataFrame:
    return tiny_dataset[1].copy()


ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CONFIGS = [str(ROOT / "config.yaml"), str(ROOT / "config" / "ci.yaml")]


def snakemake_command(workdir, *args, configs=CONFIGS) -> list[str]:
    """The `snakemake` command line for the repository's workflow in `workdir`."""
    return [
        str(SNAKEMAKE),
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        "--cores",
        "2",
        *args,
        "--configfile",
        *configs,
    ]


def snakemake(workdir, *args, configs=CONFIGS, timeout=900):
    command = snakemake_command(workdir, *args, configs=configs)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A complete run of the tiny config (config/ci.yaml)."""
    workdir = tmp_path_factory.mktemp("workflow")
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir
