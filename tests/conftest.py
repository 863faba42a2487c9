"""The tests' fixtures; what they share besides lives in helpers.py. The fixtures import what they need
themselves: pytest-xdist's controller process loads this file too but runs no test, and should start light."""

import pandas as pd
import pytest


def pytest_collection_modifyitems(items):
    """The SLURM tests' module first, then the modules with the most slow tests: pytest-xdist's two workers
    (make test) then start on the two longest pieces of work, and the quick modules fill in at the end."""
    weight = {}
    for item in items:
        cluster, slow = weight.get(item.module, (0, 0))
        weight[item.module] = (
            cluster + bool(item.get_closest_marker("cluster")),
            slow + bool(item.get_closest_marker("slow")),
        )
    items.sort(key=lambda item: tuple(-n for n in weight[item.module]))


@pytest.fixture
def class_list(tmp_path) -> str:
    from helpers import class_list_file

    return class_list_file(tmp_path)


def synthetic_dataset(tmp_path_factory, name: str, recordings_per_class: int) -> tuple:
    """A synthetic dataset, `name`/UrbanSound8K, written once a run, and its manifest."""
    from helpers import written_once

    from diffaug.dataset import build_manifest
    from diffaug.synthetic import SyntheticSpec, write_synthetic_dataset

    spec = SyntheticSpec(recordings_per_class=recordings_per_class, clips_per_recording=2, seed=3)
    root = written_once(tmp_path_factory, name, lambda folder: write_synthetic_dataset(folder, spec, progress=False))
    return root, build_manifest(root)[0]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> tuple:
    """A synthetic dataset of 80 clips (4 recordings x 2 clips per class) and its manifest."""
    return synthetic_dataset(tmp_path_factory, "data/UrbanSound8K", recordings_per_class=4)


@pytest.fixture(scope="session")
def paired_dataset(tmp_path_factory) -> tuple:
    """A synthetic dataset of 120 clips (6 recordings x 2 clips per class) and its manifest: enough
    recordings outside fold 1 for pairs within each judge half."""
    return synthetic_dataset(tmp_path_factory, "paired/UrbanSound8K", recordings_per_class=6)


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory):
    """An untrained tiny audio-diffusion pipeline folder."""
    import torch
    from diffusers import DDIMScheduler
    from helpers import TINY_MEL, TINY_UNET

    from diffaug.diffusion import build_unet, save_pipeline

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("pipe") / "model"
    save_pipeline(folder, build_unet(TINY_MEL, TINY_UNET), DDIMScheduler(clip_sample=False), TINY_MEL)
    return folder


@pytest.fixture
def manifest(tiny_dataset) -> pd.DataFrame:
    return tiny_dataset[1].copy()


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A complete run of the tiny config (config/ci.yaml), made once a run."""
    from helpers import snakemake, written_once

    def run(workdir):
        result = snakemake(workdir)
        assert result.returncode == 0, result.stderr[-5000:]

    return written_once(tmp_path_factory, "workflow", run)
