"""Generation speed: the published study's loop against this project's batched generator, same model and steps.

(a) reference: for each pair, AudioDiffusionPipeline.encode on each clip, slerp, a pipeline call to
    decode and the pipeline's own mel -> audio (librosa Griffin-Lim);
(b) diffaug.generate.generate_class at the demo config's count per class.
Both are timed after a warm-up call of their own (one pair for (a), a whole class for (b)), so
neither pays one-off CUDA/cuDNN set-up; (b)'s first call is reported too. Also the generator's peak
memory at two counts per class, each in a fresh process; peak memory does not depend on the number
of DDIM steps, so those runs may use fewer (--memory-steps). The last line printed is JSON.

    python benchmarks/generation.py                      # demo model from config.yaml
    python benchmarks/generation.py --model published    # 256 x 256 UNet of the published size (GPU)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
import yaml
from diffusers import DDIMScheduler
from snakemake.utils import update_config

from diffaug.audio import load_mono, resample
from diffaug.dataset import build_manifest
from diffaug.devices import resolve_device
from diffaug.diffusion import build_unet, load_pipeline, save_pipeline
from diffaug.generate import GenerateSettings, generate_class
from diffaug.mel_image import MelSpec
from diffaug.pairs import choose_pairs, count_pairs, pairs_table
from diffaug.plan import check_config
from diffaug.splits import make_split
from diffaug.synthetic import SyntheticSpec, write_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]


def merged_config(paths: list[str]) -> dict:
    """Config files merged key by key over config.yaml, as Snakemake merges --configfile, checked
    and with the schema's defaults filled in, as the workflow reads it."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for path in paths:
        update_config(config, yaml.safe_load(Path(path).read_text()) or {})
    return check_config(config)


CLASS = "siren"
PUBLISHED = {
    "mel": {
        "x_res": 256,
        "y_res": 256,
        "sample_rate": 22050,
        "n_fft": 2048,
        "hop_length": 256,
        "top_db": 80,
        "n_iter": 32,
    },
    "unet": {"block_out_channels": [128, 128, 256, 256, 512, 512], "layers_per_block": 2, "attention_levels": [4]},
}


class PassCounter:
    """Counts UNet passes per sample (a batch of 8 counts 8)."""

    def __init__(self, unet):
        self.samples = 0
        unet.register_forward_pre_hook(lambda module, args, kwargs: self._count(args, kwargs), with_kwargs=True)

    def _count(self, args, kwargs):
        self.samples += (args[0] if args else kwargs["sample"]).shape[0]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def prepare(workdir: Path, model: str, config: dict) -> tuple[Path, pd.DataFrame]:
    """A random-weight pipeline of the chosen size, and one class's training clips of the demo dataset."""
    spec_cfg = PUBLISHED if model == "published" else config["diffusion"]
    spec = MelSpec(**spec_cfg["mel"])
    torch.manual_seed(0)
    save_pipeline(workdir / "model", build_unet(spec, spec_cfg["unet"]), DDIMScheduler(clip_sample=False), spec)
    data = workdir / "data"
    write_synthetic_dataset(data, SyntheticSpec(**config["dataset"]["synthetic"]), progress=False, classes=(CLASS,))
    manifest = build_manifest(data)[0]
    name = "random" if config["protocol"]["kind"] == "random_split" else f"fold{config['protocol']['test_folds'][0]}"
    train = set(make_split(manifest, name, config["protocol"])["train"])
    return workdir / "model", manifest[manifest["id"].isin(train)]


def reference(pipeline, clips: pd.DataFrame, pairs, steps: int, alpha: float, out: Path, rate: int) -> None:
    """The published study's loop, one pair at a time through the pipeline."""
    by_id = clips.set_index("id")
    mel = pipeline.mel
    out.mkdir(parents=True, exist_ok=True)
    for k, (a, b) in enumerate(pairs):
        noises = []
        for clip in (a, b):
            mel.load_audio(raw_audio=load_mono(by_id.loc[clip, "path"], mel.get_sample_rate()).numpy())
            noises.append(pipeline.encode([mel.audio_slice_to_image(0)], steps=steps))
        noise = pipeline.slerp(noises[0], noises[1], alpha)
        _, (sample_rate, audios) = pipeline(noise=noise, steps=steps, return_dict=False)
        audio = resample(torch.from_numpy(np.asarray(audios[0], np.float32)), sample_rate, rate)
        sf.write(out / f"{k}.wav", audio.numpy(), rate, subtype="PCM_16")


def timed(device: torch.device, function, *args, **kwargs) -> float:
    """Seconds that `function(*args, **kwargs)` takes, device work included."""
    _sync(device)
    start = time.perf_counter()
    function(*args, **kwargs)
    _sync(device)
    return time.perf_counter() - start


def child_peak_memory(args, count: int) -> dict:
    """Peak memory of the generator alone at `count` clips, measured in a fresh process."""
    command = [sys.executable, __file__, "--memory-child", str(count), *sys.argv[1:]]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"memory run at {count} clips per class failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "config.yaml"))
    parser.add_argument("--model", choices=["demo", "published"], default="demo")
    parser.add_argument("--count", type=int, help="generated clips per class (default: the config's pairs_per_class)")
    parser.add_argument("--reference-pairs", type=int, default=None, help="pairs timed through the reference loop")
    parser.add_argument("--steps", type=int, help="DDIM steps (default: the config's)")
    parser.add_argument("--memory-counts", type=int, nargs=2, default=[20, 200])
    parser.add_argument("--memory-steps", type=int, help="DDIM steps of the memory runs (default: --steps)")
    parser.add_argument("--batch-size", type=int, help="generator batch size (default: the config's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    config = merged_config([args.config])
    settings = {**config["generate"], "device": args.device, "strength": 1.0}  # the whole schedule, as published
    settings["steps"] = args.steps or settings["steps"]
    settings["batch_size"] = args.batch_size or settings["batch_size"]
    count = args.count or settings["pairs_per_class"]
    device = resolve_device(args.device)
    rate = config["features"]["sample_rate"]

    if args.memory_child:
        settings["steps"] = args.memory_steps or settings["steps"]
        workdir = Path(args.workdir)
        clips = pd.read_csv(workdir / "clips.csv")
        pipeline = load_pipeline(workdir / "model")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        pairs = pairs_table(clips.assign(**{"class": CLASS}), args.memory_child, settings["seed"])
        folder = workdir / f"memory{args.memory_child}"
        generate_class(pipeline, clips, folder, pairs, GenerateSettings.from_config(settings), rate, CLASS)
        peak = {"rss_mb_before": before, "rss_mb_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        if device.type == "cuda":
            peak["cuda_mb_peak"] = torch.cuda.max_memory_allocated() / 2**20
        print(json.dumps(peak))
        return

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model_dir, clips = prepare(workdir, args.model, config)
        too_many = [n for n in [count, *args.memory_counts] if n > count_pairs(clips)]
        if too_many:
            parser.error(f"{too_many} clips per class: the class has only {count_pairs(clips)} pairs to interpolate")
        clips.to_csv(workdir / "clips.csv", index=False)
        pipeline = load_pipeline(model_dir, device)
        pipeline.set_progress_bar_config(disable=True)
        counter = PassCounter(pipeline.unet)
        n_ref = args.reference_pairs or count
        ref_pairs = choose_pairs(clips, count, settings["seed"])[:n_ref]
        steps, alpha = settings["steps"], settings["alpha"]

        def published_loop(folder: str, pairs) -> float:
            return timed(device, reference, pipeline, clips, pairs, steps, alpha, workdir / folder, rate)

        def generator(folder: str) -> float:
            pairs = pairs_table(clips.assign(**{"class": CLASS}), count, settings["seed"])
            run = GenerateSettings.from_config(settings)
            return timed(device, generate_class, pipeline, clips, workdir / folder, pairs, run, rate, CLASS)

        published_loop("warm-reference", ref_pairs[:1])
        counter.samples = 0
        ref_seconds = published_loop("reference", ref_pairs)
        ref_passes = counter.samples / n_ref

        first_seconds = generator("warm-generator")
        counter.samples = 0
        ours_seconds = generator("generator")
        ours_passes = counter.samples / count

        result = {
            "device": torch.cuda.get_device_name()
            if device.type == "cuda"
            else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)",
            "model": args.model,
            "unet_parameters_m": round(sum(p.numel() for p in pipeline.unet.parameters()) / 1e6, 1),
            "steps": settings["steps"],
            "batch_size": settings["batch_size"],
            "count_per_class": count,
            "class_training_clips": len(clips),
            "precision": settings["precision"] if device.type == "cuda" else "fp32",
            "reference": {
                "pairs_timed": n_ref,
                "seconds_per_clip": ref_seconds / n_ref,
                "unet_passes_per_clip": ref_passes,
            },
            "generator": {
                "seconds_per_clip": ours_seconds / count,
                "first_call_seconds_per_clip": first_seconds / count,
                "unet_passes_per_clip": ours_passes,
            },
            "speedup": (ref_seconds / n_ref) / (ours_seconds / count),
        }
        print("speed:", json.dumps(result), file=sys.stderr, flush=True)  # kept if a memory run fails

        sys.argv += ["--workdir", str(workdir)]
        memory = {str(n): child_peak_memory(args, n) for n in args.memory_counts}
    key = "cuda_mb_peak" if device.type == "cuda" else "rss_mb_peak"
    small, large = (memory[str(n)][key] for n in args.memory_counts)
    result |= {
        "memory_steps": args.memory_steps or settings["steps"],
        "peak_memory_mb": {str(n): memory[str(n)][key] for n in args.memory_counts},
        "peak_memory_ratio": large / small,
        "memory_detail": memory,  # on a CPU: process RSS high-water mark before and after generating
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
