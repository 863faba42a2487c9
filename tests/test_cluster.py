"""The tiny config through the SLURM profile on a single-node SLURM (tests/cluster/start_slurm.sh)."""

import subprocess

import pandas as pd
import pytest
from conftest import CONFIGS, ROOT, snakemake

pytestmark = pytest.mark.cluster


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
    small.write_text(
        "variants: [baseline, diffusion]\nseeds: [0]\ngenerate: {device: auto}\ndiffusion: {device: auto}\n"
    )
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
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert (tmp_path / "results" / "tables" / "accuracy.csv").is_file()
    jobs = _jobs_since(slurm)
    rule = jobs["comment"].str.extract(r"rule_([a-z_]+?)(?:_wildcards|$)")[0]
    assert set(rule) >= {"prepare_dataset", "train_diffusion", "interpolate", "train_classifier", "report"}
    assert (jobs["state"] == "COMPLETED").all()
    gpu_rules = rule.isin(["train_diffusion", "interpolate"])
    assert jobs.loc[gpu_rules, "gres"].str.contains("gpu").all()
    assert not jobs.loc[~gpu_rules, "gres"].str.contains("gpu").any()
    assert (rule == "interpolate").sum() == 10
