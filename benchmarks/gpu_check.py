"""The checks of a machine with CUDA in one command, a summary line per part, in a few minutes:

workflow     the tiny config end to end through Snakemake with every GPU rule on `cuda` in bf16:
             diffusion fine-tuned from a local pipeline (init_from) with EMA and checkpoints,
             generation and every classifier, GPU slots (`--resources gpu=1`); its runtime table
             must list each GPU stage as `cuda bf16`
generation   benchmarks/generation.py at the published UNet size: seconds per generated clip
seeds        benchmarks/stacked_seeds.py: classifier runs per minute at 1, 3 and 15 models, one by one
             against stacked with vmap
projection   benchmarks/study_cost.py on config/urbansound8k.yaml: unit costs measured here, the
             projected hours of the real study
guidance     the same with diffusion.conditioning class and guidance 2: what a guided decoding pass
             (the conditional and empty-label predictions in one doubled batch) costs against a
             conditional one, and the projected hours

  make gpu-check           # python benchmarks/gpu_check.py; exits 1 if a part failed, 2 without CUDA
  python benchmarks/gpu_check.py --device cpu --parts workflow    # the same workflow check on a CPU (fp32)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
GPU_STAGES = ("train_diffusion", "interpolate", "reconstruct", "train_classifier")


def last_json(text: str) -> dict:
    """The last line of a benchmark's output, as JSON."""
    return json.loads(text.strip().splitlines()[-1])


def run(command: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def start_pipeline(folder: Path, config: dict) -> None:
    """A pipeline folder of the config's mel and UNet sizes, for init_from to fine-tune."""
    from diffusers import DDIMScheduler

    from diffaug.diffusion import build_unet, save_pipeline
    from diffaug.mel_image import MelSpec

    spec = MelSpec(**config["diffusion"]["mel"])
    save_pipeline(folder, build_unet(spec, config["diffusion"]["unet"]), DDIMScheduler(), spec)


def workflow(workdir: Path, device: str) -> str:
    tiny = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())
    start_pipeline(workdir / "start", tiny)
    runtime = f"{device} {'bf16' if device == 'cuda' else 'fp32'}"
    on_device = {"device": device, "precision": runtime.split()[1]}
    overlay = {
        "diffusion": {**on_device, "init_from": str(workdir / "start"), "ema_decay": 0.99},
        "generate": on_device,
        "classifier": on_device,
    }
    (workdir / "gpu.yaml").write_text(yaml.safe_dump(overlay))
    configs = [str(ROOT / "config.yaml"), str(ROOT / "config" / "ci.yaml"), str(workdir / "gpu.yaml")]
    command = [str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(ROOT / "Snakefile")]
    command += ["--cores", "4", "--resources", "gpu=1", "--configfile", *configs, "--directory", str(workdir)]
    began = time.perf_counter()
    result = run(command, ROOT, 900)
    seconds = time.perf_counter() - began
    if result.returncode:
        raise RuntimeError(f"snakemake failed:\n{result.stderr[-3000:]}")
    runtimes = pd.read_csv(workdir / "results" / "tables" / "runtimes.csv")
    elsewhere = runtimes[runtimes["stage"].isin(GPU_STAGES) & (runtimes["runtime"] != runtime)]
    if len(elsewhere) or set(GPU_STAGES) - set(runtimes["stage"]):
        raise RuntimeError(f"GPU stages not all on {runtime}:\n{runtimes.to_string(index=False)}")
    return f"every GPU stage ran on {runtime} ({', '.join(GPU_STAGES)}), the whole run in {seconds:.0f} s"


def generation(workdir: Path, device: str) -> str:
    command = [sys.executable, str(ROOT / "benchmarks" / "generation.py"), "--model", "published", "--device", device]
    command += ["--count", "64", "--reference-pairs", "2", "--memory-counts", "8", "64"]
    result = run(command, workdir, 900)
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    figures = last_json(result.stdout)
    shown = {key: value for key, value in figures.items() if not isinstance(value, (dict, list))}
    return json.dumps(shown)


def seeds(workdir: Path, device: str) -> str:
    result = run([sys.executable, str(ROOT / "benchmarks" / "stacked_seeds.py"), "--device", device], workdir, 900)
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    rows = last_json(result.stdout)["rows"]
    return "; ".join(
        f"{row['models']} models: {row['runs_per_minute_one_by_one']} runs/min one by one, "
        f"{row['runs_per_minute_stacked']} stacked"
        for row in rows
    )


def study_cost(workdir: Path, device: str, overlay: dict | None = None) -> dict:
    """benchmarks/study_cost.py's figures for config/urbansound8k.yaml, with `overlay` over it."""
    configs = [str(ROOT / "config" / "urbansound8k.yaml")]
    if overlay:
        (workdir / "overlay.yaml").write_text(yaml.safe_dump(overlay))
        configs.append(str(workdir / "overlay.yaml"))
    command = [sys.executable, str(ROOT / "benchmarks" / "study_cost.py"), "--device", device, "--config", *configs]
    result = run(command, workdir, 900)
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return last_json(result.stdout)


def projection(workdir: Path, device: str) -> str:
    figures = study_cost(workdir, device)
    jobs, minutes = figures["stage_jobs"], figures["stage_minutes"]
    stages = ", ".join(f"{stage} {minutes[stage]} min ({jobs[stage]} jobs)" for stage in minutes if jobs[stage])
    return f"{figures['machine']}: {figures['projected_hours']} h projected for config/urbansound8k.yaml; {stages}"


def guidance(workdir: Path, device: str) -> str:
    figures = study_cost(workdir, device, {"diffusion": {"conditioning": "class"}, "generate": {"guidance_scale": 2}})
    units, ratios = figures["units"], figures["ratios"]
    return (
        f"a guided decoding pass costs {ratios['guided_over_conditional_pass']}x a conditional one "
        f"({units['decoding_pass_seconds_per_sample'] * 1e3:.1f} ms a sample); "
        f"{figures['projected_hours']} h projected for config/urbansound8k.yaml with conditioning class, guidance 2"
    )


PARTS = {"workflow": workflow, "generation": generation, "seeds": seeds, "projection": projection, "guidance": guidance}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu-check needs a CUDA device; none is visible here", file=sys.stderr)
        return 2
    failed = 0
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        for name in args.parts:
            workdir = Path(folder) / name
            workdir.mkdir()
            began = time.perf_counter()
            try:
                summary = PARTS[name](workdir, args.device)
            except (RuntimeError, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as error:
                summary, failed = f"FAILED: {error}", failed + 1
            print(f"{name} ({time.perf_counter() - began:.0f} s): {summary}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
