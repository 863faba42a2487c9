"""The workflow used as a Snakemake module by a workflow in another directory."""

import re
import subprocess

import pytest
import yaml
from helpers import CONFIGS, ROOT, SNAKEMAKE, snakemake, without_slurm_controller

pytestmark = pytest.mark.slow


def project_variable() -> str:
    """The variable that envs/diffaug.yaml installs the project from: its pip line `-e ${NAME}`."""
    env = yaml.safe_load((ROOT / "envs" / "diffaug.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    names = [match[1] for line in pip if (match := re.fullmatch(r"-e \$\{([A-Z0-9_]+)\}", line))]
    assert len(names) == 1, pip
    return names[0]


HOST_SNAKEFILE = """\
import os
import sys


configfile: {config!r}
configfile: {ci!r}


module diffaug:
    snakefile:
        {snakefile!r}
    config:
        config


use rule * from diffaug


print("{variable}=" + str(os.environ.get("{variable}")), file=sys.stderr)
"""


def run_host(host, *args):
    command = [str(SNAKEMAKE), "--cores", "2", *args]
    return subprocess.run(
        command, cwd=host, capture_output=True, text=True, timeout=600, env=without_slurm_controller()
    )


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A workflow in its own directory that uses this one as a module with the tiny settings."""
    folder = tmp_path_factory.mktemp("host")
    snakefile = HOST_SNAKEFILE.format(
        config=CONFIGS[0], ci=CONFIGS[1], snakefile=str(ROOT / "Snakefile"), variable=project_variable()
    )
    (folder / "Snakefile").write_text(snakefile)
    return folder


@pytest.fixture(scope="module")
def dry_run(host):
    result = run_host(host, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def _planned_jobs(output: str) -> dict:
    stats = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE)}


def test_a_workflow_elsewhere_plans_every_job_through_the_module(dry_run, tmp_path_factory):
    planned = _planned_jobs(dry_run)
    assert planned["train_classifier"] == 7 and planned["interpolate"] == planned["reconstruct"] == 1
    assert planned["report"] == planned["all"] == 1
    direct = snakemake(tmp_path_factory.mktemp("direct"), "-n")
    assert direct.returncode == 0, direct.stderr[-3000:]
    assert planned == _planned_jobs(direct.stdout + direct.stderr)


def test_the_module_points_its_environment_at_its_own_checkout(dry_run):
    variable = project_variable()
    assert f"{variable}={ROOT}\n" in dry_run, f"the rules should set {variable} to the repository root"


def test_the_module_runs_its_scripts_from_another_directory(host):
    result = run_host(host, "results/data/manifest.csv")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (host / "results" / "data" / "manifest.csv").stat().st_size > 0
