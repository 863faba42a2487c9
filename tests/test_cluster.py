"""The tiny config through the SLURM profile on a single-node SLURM (tests/cluster/start_slurm.sh)."""

import re
import subprocess
import sys

import pandas as pd
import pytest
from helpers import CONFIGS, ROOT, snakemake

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def slurm():
    started = subprocess.run(
        ["bash", str(ROOT / "tests" / "cluster" / "start_slurm.sh")], capture_output=True, text=True
    )
    assert started.returncode == 0, started.stderr
    return subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True).stdout.split()


def _jobs_since(known: list[str]) -> pd.DataFrame:
    """Jobs SLURM still remembers (MinJobAge keeps finished ones), other than `known`."""
    fields = "JobID:20,State:20,tres-per-job:40,Comment:300"  # the comment names the rule and wildcards
    out = subprocess.run(["squeue", "-h", "-t", "all", "-O", fields], capture_output=True, text=True, check=True)
    rows = [line.split() for line in out.stdout.strip().splitlines()]
    jobs = pd.DataFrame(rows, columns=["id", "state", "gres", "comment"])
    return jobs[~jobs["id"].isin(known)]


def test_the_slurm_profile_runs_the_workflow_and_asks_gpus_for_gpu_rules(slurm, tmp_path):
    small = tmp_path / "small.yaml"
    # `auto` asks a cluster for a GPU (the node's declared one is not real: the job then runs on its CPU).
    small.write_text("arms: [baseline, diffusion]\nseeds: [0]\ngenerate: {device: auto}\ndiffusion: {device: auto}\n")
    result = snakemake(
        tmp_path,
        "--profile",
        str(ROOT / "workflow" / "profiles" / "slurm"),
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--seconds-between-status-checks",
        "2",
        configs=[*CONFIGS, str(small)],
        timeout=900,
        slurm=True,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert (tmp_path / "results" / "tables" / "accuracy.csv").is_file()
    jobs = _jobs_since(slurm)
    rule = jobs["comment"].str.extract(r"rule_([a-z_]+?)(?:_wildcards|$)")[0]
    assert set(rule) >= {"train_diffusion", "interpolate", "train_classifier", "features"}
    assert not set(rule) & {"prepare_dataset", "import_pretrained", "split", "pairs", "report"}  # local rules
    assert (jobs["state"] == "COMPLETED").all()
    assert "the cluster's default partition debug takes the jobs" in result.stderr  # the profile names none
    gpu_rules = rule.isin(["train_diffusion", "interpolate"])
    assert jobs.loc[gpu_rules, "gres"].str.contains("gpu").all()
    assert not jobs.loc[~gpu_rules, "gres"].str.contains("gpu").any()
    assert (rule == "interpolate").sum() == 1  # one job per split and generated set, every class in it


CALIBRATE = """
import sys, time, torch, yaml
from diffaug.diffusion import DiffusionSettings, train_diffusion
from diffaug.mel_image import MelSpec
config = yaml.safe_load(open(sys.argv[1]))["diffusion"]
spec = MelSpec(**config["mel"])
images = torch.rand(64, 1, spec.y_res, spec.x_res) * 2 - 1
torch.set_num_threads(1)
took = {}
for steps in (20, 220):
    start = time.perf_counter()
    train_diffusion(images, spec, DiffusionSettings.from_config(config | {"steps": steps}), "cpu", None)
    took[steps] = time.perf_counter() - start
print((took[220] - took[20]) / 200)
"""


def _diffusion_seconds_per_step() -> float:
    """One training step of the tiny config's diffusion model, timed in a SLURM job like the real one."""
    command = ["srun", "--time=3", "--cpus-per-task=1", sys.executable, "-c", CALIBRATE, CONFIGS[1]]
    timed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert timed.returncode == 0, timed.stderr[-3000:]
    return float(timed.stdout.split()[-1])


def test_a_job_out_of_time_runs_again_with_more_and_resumes_from_its_checkpoint(slurm, tmp_path):
    known = _jobs_since([])["id"].tolist()
    # About 100 s of training: SLURM stops the first attempt after 60 to 90 s (its 1-minute limit),
    # and the second, resuming, needs well under its 2 minutes.
    steps = round(100 / _diffusion_seconds_per_step())
    slow = tmp_path / "slow.yaml"
    slow.write_text(f"diffusion: {{steps: {steps}}}\nresources: {{train_diffusion: {{runtime: 1}}}}\n")
    result = snakemake(
        tmp_path,
        "results/diffusion/fold1/model",
        "--profile",
        str(ROOT / "workflow" / "profiles" / "slurm"),
        "--default-resources",
        "slurm_partition=debug",
        "--retries",
        "3",
        "--seconds-between-status-checks",
        "2",
        configs=[*CONFIGS, str(slow)],
        timeout=900,
        slurm=True,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    jobs = _jobs_since(known)
    jobs = jobs[jobs["comment"].str.contains("train_diffusion")].sort_values("id", key=lambda ids: ids.astype(int))
    assert list(jobs["state"])[-1] == "COMPLETED" and "TIMEOUT" in set(jobs["state"]), jobs
    limits = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", ",".join(jobs["id"]), "-O", "JobID:20,TimeLimit:20"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    limit_of = dict(zip(limits[::2], limits[1::2]))
    assert [limit_of[i] for i in jobs["id"]] == [f"{k}:00" for k in range(1, len(jobs) + 1)]  # runtime × attempt
    log = (tmp_path / "results" / "logs" / "train_diffusion" / "fold1.log").read_text()
    assert re.search(r"resuming from step [1-9]\d* of " + str(steps), log), log[-2000:]
