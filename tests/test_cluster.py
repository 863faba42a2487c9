"""The tiny config through the SLURM profile on a single-node SLURM (tests/cluster/start_slurm.sh): the same results
as a local run, and a job out of time run again with more."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import CONFIGS, ROOT, snakemake, snakemake_command

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


SHARED = [
    "features/fold1/set0/diffusion_kept.safetensors",
    *(
        f"models/fold1/{arm}/seed0/{name}"
        for arm in ("baseline", "diffusion")
        for name in ("model.safetensors", "metrics.json")
    ),
]


def test_the_slurm_profile_runs_the_workflow_from_an_odd_path_to_the_same_results(slurm, request, tmp_path):
    """Two arms and one seed of the tiny config through the profile, with the results and the dataset under a
    path with spaces and non-ASCII: the generated clips kept, the models and their metrics the same, byte for
    byte, as the local run of every arm and seed (`finished_run`); GPUs asked for by the rules that compute
    on one."""
    workdir = tmp_path / "zweiter Lauf — ünïcødé dir"
    small = tmp_path / "small.yaml"
    # `auto` asks a cluster for a GPU (the node's declared one is not real: the job then runs on its CPU).
    small.write_text("arms: [baseline, diffusion]\nseeds: [0]\ngenerate: {device: auto}\ndiffusion: {device: auto}\n")
    result = snakemake(
        workdir,
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
    assert (workdir / "results" / "tables" / "accuracy.csv").is_file()
    assert (workdir / "results" / "data" / "synthetic" / "metadata" / "UrbanSound8K.csv").is_file()
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
    local = request.getfixturevalue("finished_run")  # asked for last: another worker may be making it
    for name in SHARED:
        assert (workdir / "results" / name).read_bytes() == (local / "results" / name).read_bytes(), name


CALIBRATE = """
import sys, time, torch, yaml
from diffaug.diffusion import DiffusionSettings, train_diffusion
from diffaug.mel_image import MelSpec
config = yaml.safe_load(open(sys.argv[1]))["diffusion"]
spec = MelSpec(**config["mel"])
images = torch.rand(64, 1, spec.y_res, spec.x_res) * 2 - 1
torch.set_num_threads(1)
took = {}
for steps in (10, 60):
    start = time.perf_counter()
    train_diffusion(images, spec, DiffusionSettings.from_config(config | {"steps": steps}), "cpu", None)
    took[steps] = time.perf_counter() - start
print((took[60] - took[10]) / 50)
"""


def _diffusion_seconds_per_step() -> float:
    """One training step of the tiny config's diffusion model on one thread, as its job has: roughly, to
    size a run (the test below has a wide margin either way)."""
    timed = subprocess.run([sys.executable, "-c", CALIBRATE, CONFIGS[1]], capture_output=True, text=True, timeout=300)
    assert timed.returncode == 0, timed.stderr[-3000:]
    return float(timed.stdout.split()[-1])


def _stopped_when_resumed(run: subprocess.Popen, log: Path, seconds: float) -> str:
    """The log's text once it says that training resumed (or after `seconds`), with the run then killed (its
    SLURM job runs on: a stopping Snakemake waits for its jobs)."""
    deadline = time.time() + seconds
    while run.poll() is None and time.time() < deadline and "resuming from step" not in _text(log):
        time.sleep(1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    return _text(log)


def _text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def test_a_job_out_of_time_runs_again_with_more_and_resumes_from_its_checkpoint(slurm, tmp_path):
    known = _jobs_since([])["id"].tolist()
    # About 300 s of training, a checkpoint every 15 s: SLURM stops the first attempt after 60 to 90 s (its
    # 1-minute limit), and the test stops the second, given 2 minutes, once it has resumed. The training
    # may run several times faster or slower than timed here and still do both.
    steps = round(300 / _diffusion_seconds_per_step())
    slow = tmp_path / "slow.yaml"
    slow.write_text(f"diffusion: {{steps: {steps}}}\nresources: {{train_diffusion: {{runtime: 1}}}}\n")
    command = snakemake_command(
        tmp_path,
        "results/diffusion/fold1/model",
        "--profile",
        str(ROOT / "workflow" / "profiles" / "slurm"),
        "--default-resources",
        "slurm_partition=debug",
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--seconds-between-status-checks",
        "2",
        configs=[*CONFIGS, str(slow)],
    )
    with open(tmp_path / "snakemake.log", "w") as out:
        run = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
        log = _stopped_when_resumed(run, tmp_path / "results" / "logs" / "train_diffusion" / "fold1.log", 600)
    jobs = _jobs_since(known)
    subprocess.run(["scancel", *jobs["id"]], check=False)
    assert re.search(r"resuming from step [1-9]\d* of " + str(steps), log), (tmp_path / "snakemake.log").read_text()
    jobs = jobs[jobs["comment"].str.contains("train_diffusion")].sort_values("id", key=lambda ids: ids.astype(int))
    assert list(jobs["state"])[0] == "TIMEOUT", jobs
    limits = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", ",".join(jobs["id"]), "-O", "JobID:20,TimeLimit:20"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    limit_of = dict(zip(limits[::2], limits[1::2]))
    assert [limit_of[i] for i in jobs["id"]] == ["1:00", "2:00"]  # runtime × attempt
