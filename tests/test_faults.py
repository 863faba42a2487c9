"""A real run killed part way through a job: resumed, it ends as an uninterrupted run."""

import os
import signal
import subprocess
import time

import pytest
import yaml
from helpers import CONFIGS, snakemake, snakemake_command, without_slurm_controller

pytestmark = pytest.mark.slow


def test_a_killed_job_resumes_from_its_checkpoint_and_ends_the_same(tmp_path):
    longer = tmp_path / "longer.yaml"
    diffusion = yaml.safe_load(open(CONFIGS[1]))["diffusion"] | {"steps": 300}
    longer.write_text(yaml.safe_dump({"diffusion": diffusion}))
    configs, target = [*CONFIGS, str(longer)], "results/diffusion/fold1/model"

    reference = snakemake(tmp_path / "reference", target, configs=configs)
    assert reference.returncode == 0, reference.stderr[-3000:]

    workdir = tmp_path / "killed"
    workdir.mkdir()
    log = open(workdir.parent / "killed.log", "w")
    run = subprocess.Popen(
        snakemake_command(workdir, target, configs=configs),
        stdout=log,
        stderr=log,
        start_new_session=True,
        env=without_slurm_controller(),
    )
    checkpoint = workdir / f"{target}.checkpoint.safetensors"
    deadline = time.time() + 300
    while not checkpoint.exists() and run.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # snakemake and its job, mid-training
    run.wait()
    assert checkpoint.exists() and not (workdir / target).exists()

    # The killed run's lock stays, as a live run's does: a second run in the folder is refused.
    second = snakemake(workdir, target, configs=configs)
    assert second.returncode != 0 and "Directory cannot be locked" in second.stderr
    assert snakemake(workdir, "--unlock", configs=configs).returncode == 0
    resumed = snakemake(workdir, target, "--rerun-incomplete", configs=configs)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from step" in (workdir / "results" / "logs" / "train_diffusion" / "fold1.log").read_text()
    assert not checkpoint.exists()
    for name in ("unet/diffusion_pytorch_model.safetensors", "training.json"):
        assert (workdir / target / name).read_bytes() == (tmp_path / "reference" / target / name).read_bytes()
