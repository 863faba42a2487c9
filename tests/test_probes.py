"""What the machine and its scheduler offer: CUDA through nvidia-smi, SLURM's partitions."""

import os
from unittest import mock

import pytest
from helpers import without_slurm_controller

from diffaug.probes import cuda_available, partition_given, slurm_partition_problem, will_use_cuda


def _fake_sinfo(tmp_path, monkeypatch, partitions: str):
    (tmp_path / "sinfo").write_text(f"#!/bin/sh\nprintf '{partitions}'\n")
    (tmp_path / "sinfo").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")


def test_a_slurm_run_without_a_partition_says_which_takes_the_jobs_or_stops(tmp_path, monkeypatch):
    assert slurm_partition_problem(given=True) == ("", False)
    _fake_sinfo(tmp_path, monkeypatch, "gpu\\nshort*\\nlong\\n")
    message, fatal = slurm_partition_problem(given=False)
    assert not fatal and "default partition short takes the jobs" in message and "slurm_partition" in message
    _fake_sinfo(tmp_path, monkeypatch, "gpu\\nlong\\n")
    message, fatal = slurm_partition_problem(given=False)
    assert fatal and "no default partition" in message and "workflow/profiles/slurm/config.yaml" in message


def _resource_settings(*args: str):
    """Snakemake's ResourceSettings of a command line, parsed and built as `snakemake.cli` builds them
    (a profile's default-resources and set-resources become these same options)."""
    from snakemake.cli import get_argument_parser
    from snakemake.settings.types import ResourceSettings

    with mock.patch.dict(os.environ, {"PATH": without_slurm_controller()["PATH"]}):  # see without_slurm_controller
        parsed = get_argument_parser().parse_args(list(args))
    return ResourceSettings(default_resources=parsed.default_resources, overwrite_resources=parsed.set_resources)


@pytest.mark.parametrize(
    "args, given",
    [
        ([], False),
        (["--default-resources", "mem_mb=1000"], False),
        (["--default-resources", "slurm_partition=debug", "mem_mb=1000"], True),
        (["--default-resources", "slurm_partition='debug'"], True),
        (["--set-resources", "train_classifier:slurm_partition=gpu"], True),
        (["--set-resources", "train_classifier:runtime=5"], False),
    ],
)
def test_a_partition_is_found_where_the_command_line_or_profile_chose_one(args, given):
    """Fails if Snakemake stops keeping these options in ResourceSettings' public fields."""
    assert partition_given(_resource_settings(*args)) is given


def test_the_workflow_object_carries_its_resource_settings():
    """common.smk reads `workflow.resource_settings`: a field of Snakemake's Workflow."""
    import dataclasses

    import snakemake.api  # noqa: F401 (imported first, as the command line does: snakemake.workflow alone is a circle)
    from snakemake.settings.types import ResourceSettings
    from snakemake.workflow import Workflow

    fields = {field.name: field.type for field in dataclasses.fields(Workflow)}
    assert fields["resource_settings"] in (ResourceSettings, "ResourceSettings")
    settings = {field.name for field in dataclasses.fields(ResourceSettings)}
    assert {"default_resources", "overwrite_resources"} <= settings


def test_hidden_gpus_are_not_available(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert not cuda_available()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert not cuda_available()


@pytest.mark.parametrize(
    ("setting", "cuda_here", "used"),
    [("cuda", False, True), ("auto", True, True), ("auto", False, False), ("cpu", True, False)],
)
def test_a_job_uses_a_gpu_where_its_setting_asks_or_allows_one(setting, cuda_here, used):
    assert will_use_cuda(setting, cuda_here) is used
