"""What the tests share: the repository's paths, tiny model settings, the config as shipped, running the workflow
and reading the README's tables. Test modules import from here (and from layout_data), never from each other or
from conftest, which holds the fixtures alone."""

import fcntl
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from diffaug.dataset import write_classes
from diffaug.mel_image import MelSpec
from diffaug.synthetic import CLASSES

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CONFIGS = [str(ROOT / "config.yaml"), str(ROOT / "config" / "ci.yaml")]
README = (ROOT / "README.md").read_text()

TINY_MEL = MelSpec(x_res=16, y_res=16, sample_rate=22050, n_fft=1024, hop_length=512, top_db=80, n_iter=4)
TINY_UNET = {"block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4}

PROTOCOL = {"kind": "kfold", "test_folds": [1], "test_fraction": 0.1, "val_fraction": 0.2, "seed": 0}
CLASSIFIER = {"widths": [4, 4, 8], "hidden": 8, "epochs": 1, "batch_size": 8, "learning_rate": 0.01}
SB_CNN = {"model": "sb_cnn", "sb_cnn": {"widths": [4, 8, 8], "hidden": 8}}


def class_list_file(folder: Path) -> str:
    """classes.txt of the synthetic datasets in `folder`, as the manifest rule writes it."""
    write_classes(Path(folder) / "classes.txt", CLASSES)
    return str(Path(folder) / "classes.txt")


def save_latent_pipeline(folder):
    """A tiny latent audio-diffusion pipeline: an AutoencoderKL halves 16 x 16 mel images to 8 x 8."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DModel

    from diffaug.diffusion import save_pipeline

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


def written_once(tmp_path_factory, name: str, write) -> Path:
    """The folder `name` that `write(folder)` fills, once a run: pytest-xdist's worker processes share it (the
    first to ask writes it while the others wait), so that no worker spends its core on a copy of its own."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, which holds each worker's own
    folder, done = base / name, base / f"{name}.done"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
        if not done.exists():
            write(folder)
            done.touch()
    return folder


def config_yaml(**overrides):
    """config.yaml as read, with `section__key=value` overrides set in it."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for dotted, value in overrides.items():
        *parents, key = dotted.split("__")
        node = config
        for p in parents:
            node = node[p]
        node[key] = value
    return config


def config_yaml_merged(sections: dict) -> dict:
    """config.yaml with `sections` merged in as Snakemake merges `--config` into it."""
    from snakemake.utils import update_config

    config = config_yaml()
    update_config(config, sections)
    return config


def alias_bomb(levels: int) -> str:
    """YAML of a few hundred bytes whose aliases of aliases stand for about 9**levels values."""
    lines = ["lol:", "  l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"  l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 9) + "]" for k in range(1, levels)]
    return "\n".join(lines) + "\n"


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


def without_slurm_controller() -> dict:
    """The environment for a Snakemake that uses no SLURM: a stand-in `scontrol` first on the PATH, which
    fails at once. Snakemake loads every executor plugin it has at start, and the SLURM plugin then asks
    `scontrol show config`, which waits about 9 s for a controller where SLURM's commands are installed
    but none runs (as on a machine where the cluster test's SLURM has stopped): 9 s on every call."""
    folder = Path(tempfile.gettempdir()) / "diffaug-tests-no-slurm"
    stand_in = folder / "scontrol"
    if not stand_in.is_file():
        folder.mkdir(exist_ok=True)
        written = folder / f".scontrol.{os.getpid()}"
        written.write_text("#!/bin/sh\nexit 1\n")
        written.chmod(0o755)
        os.replace(written, stand_in)  # whole, whichever worker process writes it
    return os.environ | {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def snakemake(workdir, *args, configs=CONFIGS, timeout=900, slurm=False):
    """Run the repository's workflow in `workdir`; `slurm` for a run through a SLURM that runs here."""
    command = snakemake_command(workdir, *args, configs=configs)
    environment = None if slurm else without_slurm_controller()
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)


def readme_rules() -> dict[str, tuple[str, set[str]]]:
    """{rule: (its file, the rules it reads)} from the table under "What runs", in its order; in the
    "reads" cell words in parentheses are notes, and `a or b` names both."""
    section = README.split("## What runs", 1)[1].split("\n## ", 1)[0]
    rules = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].endswith(".smk`"):
            rule, file, reads = cells[0].split()[0].strip("`"), cells[1].strip("`"), cells[2]
            names = re.split(r",| or ", re.sub(r"\([^)]*\)", "", reads))
            rules[rule] = (file, {name.strip(" `") for name in names if name.strip(" `")})
    return rules


def rerun_table():
    """(change, {rule: count or None}) rows of the README's table of what a change reruns."""
    text = README.split("### What a change reruns", 1)[1]
    rows = []
    for line in text.splitlines():
        match = re.fullmatch(r"\| `(\{?[a-z_]+: .*)` \| (.*) \|", line.strip())
        if match:
            jobs = {}
            for item in match[2].removeprefix("everything: ").split(", "):
                name, _, count = item.partition(" ×")
                jobs[name] = int(count) if count else 1
            rows.append((match[1], jobs))
    return rows
