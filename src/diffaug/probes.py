"""What this machine and its scheduler offer, asked without torch while a run is planned: CUDA devices
(through nvidia-smi), and the SLURM partition that takes the jobs."""

from __future__ import annotations

import os
import subprocess

from .gpu_slots import listed_gpus


def cuda_available() -> bool:
    """Whether this machine shows an NVIDIA GPU, asked of `nvidia-smi` so that planning a run
    imports no torch; CUDA_VISIBLE_DEVICES set empty (or -1) hides them."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "0").strip() in ("", "-1"):
        return False
    return bool(listed_gpus())


def will_use_cuda(setting: str, cuda_here: bool) -> bool:
    """Whether a job with this device setting computes on a GPU: `cuda`, or `auto` on a machine
    with CUDA. The workflow asks the scheduler for a GPU exactly then."""
    return setting == "cuda" or (setting == "auto" and cuda_here)


def default_slurm_partition() -> str | None:
    """The partition SLURM uses when a job names none (`sinfo` marks it with *), if there is one."""
    try:
        listed = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    marked = [name for name in listed.stdout.split() if name.endswith("*")]
    return marked[0].rstrip("*") if listed.returncode == 0 and marked else None


def slurm_partition_problem(given: bool) -> tuple[str, bool]:
    """(message, fatal) for a SLURM run: which partition takes the jobs when none was given, or
    that the run cannot start because the cluster has no default one either."""
    if given:
        return "", False
    where = (
        "set slurm_partition under default-resources in workflow/profiles/slurm/config.yaml "
        "or pass --default-resources slurm_partition=<name>"
    )
    default = default_slurm_partition()
    if default is None:
        return f"no SLURM partition given and the cluster has no default partition: {where}", True
    return f"no SLURM partition given: the cluster's default partition {default} takes the jobs ({where})", False


def partition_given(resource_settings) -> bool:
    """Whether a run names a SLURM partition, for every rule (--default-resources, or a profile's
    default-resources) or per rule (--set-resources), read from Snakemake's ResourceSettings
    (`workflow.resource_settings`). Its public fields hold these as parsed from the command line and
    profile; tests/test_probes.py builds them with Snakemake's own parser, to notice if that changes."""
    every_rule = resource_settings.default_resources or {}
    per_rule = resource_settings.overwrite_resources.values()
    return "slurm_partition" in every_rule or any("slurm_partition" in resources for resources in per_rule)
