"""What a study costs: unit costs measured on this machine, and the projected wall time of a config.

Measured with random weights and made-up audio in UrbanSound8K's formats (44.1/48/96 kHz, mono or
stereo, 16/24-bit, 4 s), so no dataset is needed, each with the threads and worker processes that
the config gives its rule:
  manifest          reading and checking one clip
  features          classifier input of one clip
  mel image         one training clip decoded and made into the diffusion model's mel images, and
                    one mel image (a slice) alone
  diffusion step    one optimizer step at the configured UNet size (or the init_from folder's),
                    batch, precision and EMA
  generation        one batched UNet pass per sample and mel image -> audio per clip; a class's cost
                    follows from its pass count (each source clip inverted once), checked against
                    a real generate_class call. With diffusion.conditioning class the UNet has a class
                    embedding and a decoding pass is guided where generate.guidance_scale is not 1 (the
                    conditional and empty-label predictions in one doubled batch), timed apart; the
                    sample stage (diffusion_sample) decodes every clip through the whole schedule
  round trip        one real clip through the mel image and Griffin-Lim on the CPU
  classifier        one training step per clip, and one prediction per clip, in the configured
                    precision
  job start         a fresh Python process importing the steps and touching the device
Costs per item are slopes between two sizes, so one-off set-up is left out; reduced precision is
timed against fp32 in the same run (the `ratios`).

The projection adds the stages as the workflow runs them (`--resources gpu=1`): GPU jobs one after
another, the other jobs on the cores beside them, with the config's threads. The dataset is the
whole UrbanSound8K (10 classes, clips up to 4 s), a manifest's clips (its fold, class and seconds
columns), or `--clips` dealt evenly over `--folds`; `--classes` and `--clip-seconds` override either.
The classes set the generated clips (generate.pairs_per_class per class, split and set) and the training
clips per class, which the pairs draw from: the clips to invert, and the pairs' first clips, which
the reconstruction and the round trip take once however many pairs they start. The 4 s units
follow the clip length: reading and checking a clip and its features grow with it, a training
clip's mel images with its slices (and its reading), a classifier step with its input's size
(features.num_samples); a round trip and a generated clip are one slice of any clip. The last line
printed is JSON.

    python benchmarks/study_cost.py                                     # config/urbansound8k.yaml
    python benchmarks/study_cost.py --config config.yaml --manifest results/data/manifest.csv
    python benchmarks/study_cost.py --quick     # on a CPU: fewer and smaller timings, scaled up
    python benchmarks/study_cost.py --config config/urbansound8k-lowdata.yaml --units measured.json
                                                # another config of the same sizes, from units measured before
    python benchmarks/study_cost.py --config config/esc50.yaml --clips 2000 --folds 5 --classes 50 --clip-seconds 5
                                                # ESC-50's sizes (a manifest of it gives them too)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from diffusers import DDIMScheduler
from generation import merged_config, timed  # this folder's generation benchmark

from diffaug.arms import ARMS, IMAGE_GENERATORS, MODEL_GENERATORS
from diffaug.audio import inspect_audio
from diffaug.classifier import ClassifierSettings, build_classifier, probabilities, train_classifier
from diffaug.devices import reduced_dtype, resolve_device
from diffaug.diffusion import (
    DiffusionSettings,
    build_unet,
    class_count,
    load_pipeline,
    mel_spec_of,
    save_pipeline,
    saved_mel_spec,
    train_diffusion,
    training_images,
    with_class_embedding,
)
from diffaug.features import FeatureExtractor, FeatureSpec
from diffaug.files import worker_processes
from diffaug.generate import GenerateSettings, Interpolator, generate_class, round_trip, source_slices
from diffaug.mel_image import MelImager, MelSpec
from diffaug.pairs import choose_pairs, pairs_table
from diffaug.probes import will_use_cuda
from diffaug.splits import parse_split_name, split_names

ROOT = Path(__file__).resolve().parents[1]
URBANSOUND8K = {
    "fold_clips": {1: 873, 2: 888, 3: 925, 4: 990, 5: 936, 6: 823, 7: 838, 8: 806, 9: 816, 10: 837},
    "clips_per_recording": 8732 / 1297,
    "classes": 10,
    "clip_seconds": 4.0,
}
"""UrbanSound8K's clips per official fold (8,732 in all, from 1,297 recordings), its classes and its
clips' length (4 s at most, and most are)."""
MEASURED_SECONDS = 4.0
"""Length of the made-up clips that the per-clip units are measured on."""
REAL_FORMATS = [(44100, 2, "PCM_24"), (48000, 2, "PCM_16"), (44100, 1, "PCM_16"), (96000, 2, "PCM_24")]
GPU_STAGES = {
    "train_diffusion": "diffusion",
    "interpolate": "generate",
    "reconstruct": "generate",
    "sample": "generate",
    "train_judge": "classifier",
    "score_generated": "classifier",
    "train_classifier": "classifier",
}
"""Stages that compute on a config section's device."""


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


@contextlib.contextmanager
def threads_of(config: dict, rule: str):
    """Torch threads as the rule's jobs get them."""
    before = torch.get_num_threads()
    torch.set_num_threads(config["threads"].get(rule, 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def slope(device: torch.device, function, items: list) -> float:
    """Seconds per item of `function(items)`: from half and all of them, set-up left out. On a busy
    machine the difference can come out negative; then the whole call's time per item is taken."""
    half = len(items) // 2
    whole = timed(device, function, items)
    difference = (whole - timed(device, function, items[:half])) / (len(items) - half)
    if difference <= 0:
        log(f"slope of {getattr(function, '__name__', 'a step')}: not positive on this machine; using the mean")
        return whole / len(items)
    return difference


def write_clips(folder: Path, count: int) -> list[str]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        rate, channels, subtype = REAL_FORMATS[k % len(REAL_FORMATS)]
        path = folder / f"clip{k}.wav"
        audio = rng.uniform(-0.3, 0.3, (int(MEASURED_SECONDS * rate), channels)).astype(np.float32)
        sf.write(path, audio, rate, subtype=subtype)
        paths.append(str(path))
    return paths


def section_device(config: dict, section: str, machine: torch.device) -> torch.device:
    """Where the section's jobs compute on this machine, by their device setting."""
    return machine if will_use_cuda(config[section]["device"], machine.type == "cuda") else torch.device("cpu")


def start_model(config: dict, key: str, classes: int) -> tuple[MelSpec, torch.nn.Module, str]:
    """The UNet and mel settings of `diffusion.<key>` when it is a local folder; else the config's
    own UNet and mel stand in. With diffusion.conditioning class, conditioned on `classes` classes."""
    location = config["diffusion"][key]
    conditional = classes if config["diffusion"]["conditioning"] == "class" else 0
    if location and Path(location).is_dir():
        pipeline = load_pipeline(location)
        unet = with_class_embedding(pipeline.unet, conditional) if conditional else pipeline.unet
        return mel_spec_of(pipeline), unet, f"{key} {location}"
    spec = MelSpec(**config["diffusion"]["mel"])
    torch.manual_seed(0)
    note = f"{key} {location} is not a local folder: the config's unet and mel stand in for it" if location else ""
    return spec, build_unet(spec, config["diffusion"]["unet"], conditional), note or "from scratch"


def diffusion_step_seconds(config, spec, unet, device, batch: int, steps: int, precision: str) -> float:
    """One optimizer step: the time of 1 + `steps` steps less that of 1, after a warm-up step (so
    cuDNN's choice of kernels for these shapes and this precision is left out, as is set-up); a
    class-conditional UNet's with labels, some dropped."""
    images = torch.rand(max(64, batch), 1, spec.y_res, spec.x_res) * 2 - 1
    classes = class_count(unet)
    labelled = {"labels": torch.arange(len(images)) % classes, "classes": classes} if classes else {}
    settings = config["diffusion"] | {"batch_size": batch, "precision": precision}
    start = {k: v.clone() for k, v in unet.state_dict().items()}

    def run(n):
        steps = DiffusionSettings.from_config(settings | {"steps": n})
        took = timed(device, train_diffusion, images, spec, steps, device, init=unet, **labelled)
        unet.load_state_dict(start)
        return took

    run(1)
    return (run(1 + steps) - run(1)) / steps


def drawn_sources(pairs_per_class: int, clips: int, clips_per_recording: float, seed: int) -> tuple[int, int]:
    """Source clips that one class inverts, drawn by `pairs_per_class` pairs among `clips` clips: all of
    them (interpolation), and the pairs' first clips (the reconstruction and the round trip send a
    clip that comes first in several pairs through once; with few clips per class, far fewer)."""
    table = pd.DataFrame(
        {
            "id": [f"c{k:05d}" for k in range(clips)],
            "recording": (np.arange(clips) / clips_per_recording).astype(int),
        }
    )
    try:
        pairs = choose_pairs(table, pairs_per_class, seed)
    except ValueError as error:
        sys.exit(f"generate.pairs_per_class {pairs_per_class} with {clips} training clips per class: {error}")
    return len({clip for pair in pairs for clip in pair}), len({first for first, _ in pairs})


def walked_steps(generate: dict) -> int:
    """DDIM steps walked per inversion or decoding, as Interpolator walks them."""
    return max(1, round(generate["strength"] * generate["steps"]))


def generation_units(pipeline, settings: dict, device: torch.device, repeats: int) -> dict:
    """Seconds of one UNet pass per sample at the batch size (inversion's, and decoding's, guided where
    the pipeline is class-conditional and generate.guidance_scale is not 1), and of mel image ->
    audio per clip."""
    label = 0 if class_count(pipeline.unet) else None
    guidance = settings.get("guidance_scale", 1.0) if label is not None else 1.0
    interpolator = Interpolator(
        pipeline, settings["steps"], device, settings["precision"], settings["strength"], label, guidance
    )
    imager = MelImager(mel_spec_of(pipeline)).to(device)
    images = torch.rand(settings["batch_size"], 1, imager.spec.y_res, imager.spec.x_res, device=device)
    t = interpolator.timesteps[0]

    def passes(guided: bool) -> float:
        interpolator._eps(images, t, guided)  # warm-up
        return sum(timed(device, interpolator._eps, images, t, guided) for _ in range(repeats)) / repeats / len(images)

    with torch.inference_mode():
        imager.image_to_audio(images)  # warm-up
        unet, guided = passes(False), passes(True)
        audio = timed(device, imager.image_to_audio, images)
    return {
        "unet_pass_seconds_per_sample": unet,
        "decoding_pass_seconds_per_sample": guided,
        "image_to_audio_seconds_per_clip": audio / len(images),
    }


def generated_clip_seconds(units: dict, steps: int, sources: int, clips: int) -> float:
    """A class's seconds per generated clip: every source inverted once, every clip decoded once (its
    passes guided where they are: older units lines have no decoding pass of their own)."""
    decoding = units.get("decoding_pass_seconds_per_sample", units["unet_pass_seconds_per_sample"])
    unet = sources * steps * units["unet_pass_seconds_per_sample"] + clips * steps * decoding
    return (unet + clips * units["image_to_audio_seconds_per_clip"]) / clips


def generation_check(workdir: Path, folder: Path, settings: dict, device, count: int, files: list[str]):
    """(seconds per clip, sources inverted) of a real generate_class call, after a warm-up call."""
    clips = pd.DataFrame(
        {
            "id": [f"c{k:04d}" for k in range(4 * count)],
            "recording": [k // 3 for k in range(4 * count)],
            "path": [files[k % len(files)] for k in range(4 * count)],
        }
    )
    pipeline, run = load_pipeline(folder), GenerateSettings.from_config(settings | {"device": str(device), "seed": 1})
    pairs = pairs_table(clips.assign(**{"class": "siren"}), count, 1)
    label = 0 if class_count(pipeline.unet) else None
    warm = pairs.head(settings["batch_size"])
    generate_class(pipeline, clips, workdir / "warm", warm, run, 22050, "siren", label)
    took = timed(device, generate_class, pipeline, clips, workdir / "generated", pairs, run, 22050, "siren", label)
    return took / count, len(set(pairs["source_a"]) | set(pairs["source_b"]))


def classifier_units(config: dict, device, precision: str, clips: int, classes: int) -> dict:
    """Seconds per clip of one training step (an epoch's share) and of one prediction."""
    settings = config["classifier"] | {"device": str(device), "precision": precision}
    shape = FeatureSpec(**config["features"]).shape
    x, y = torch.rand(clips, *shape), torch.randint(0, classes, (clips,))
    one = (x[:1], y[:1])

    def train(epochs):
        run = ClassifierSettings.from_config(settings | {"epochs": epochs})
        return timed(device, train_classifier, (x, y), one, one, run, 0)

    model = build_classifier(ClassifierSettings.from_config(settings).network, classes)
    probabilities(model, x, precision, str(device))  # warm-ups: cuDNN picks its kernels per shape and precision once
    train(1)
    return {
        "train_seconds_per_clip": (train(3) - train(1)) / 2 / clips,
        "predict_seconds_per_clip": timed(device, probabilities, model, x, precision, str(device)) / clips,
    }


def job_start_seconds(device: torch.device) -> float:
    """A fresh process importing the steps and the generator and touching the device."""
    code = f"import torch, diffaug.steps, diffaug.generate; torch.zeros(1, device='{device}')"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def manifest_counts(manifest: str) -> dict:
    """Clips per fold and per recording (its recording or fsID column; else one clip each), classes
    and mean clip seconds of a manifest."""
    table = pd.read_csv(manifest)
    recordings = next((table[c].nunique() for c in ("recording", "fsID") if c in table.columns), len(table))
    return {
        "fold_clips": {int(f): n for f, n in table.groupby("fold").size().items()},
        "clips_per_recording": len(table) / recordings,
        "classes": table["class"].nunique(),
        "clip_seconds": float(table["seconds"].mean()),
    }


def even_folds(clips: int, folds: int) -> dict:
    """`clips` dealt over folds 1 to `folds` as evenly as they go (ESC-50: 5 folds of 400)."""
    return {fold: clips // folds + (fold <= clips % folds) for fold in range(1, folds + 1)}


def dataset_counts(manifest: str | None, clips=None, folds=None, classes=None, clip_seconds=None) -> dict:
    """Clips per fold and per recording, classes and clip seconds: of a manifest, of `clips` in
    `folds` even folds (one clip per recording), or of the whole UrbanSound8K (whose sizes fill in
    what is not given); `classes` and `clip_seconds` override them."""
    if manifest is not None:
        counts = manifest_counts(manifest)
    elif clips or folds:
        total, count = clips or sum(URBANSOUND8K["fold_clips"].values()), folds or len(URBANSOUND8K["fold_clips"])
        counts = URBANSOUND8K | {"fold_clips": even_folds(total, count), "clips_per_recording": 1.0}
    else:
        counts = URBANSOUND8K
    given = {"classes": classes, "clip_seconds": clip_seconds}
    return counts | {k: v for k, v in given.items() if v is not None}


def slices_per_clip(config: dict, seconds: float) -> int:
    """Mel images that diffusion training takes from a clip of `seconds`: its whole slices of the
    init_from folder's mel image (else the config's), at least one, at most diffusion.max_slices."""
    source = config["diffusion"]["init_from"]
    spec = saved_mel_spec(source) if source and Path(source).is_dir() else MelSpec(**config["diffusion"]["mel"])
    whole = int(seconds * spec.sample_rate) // spec.slice_samples
    return min(config["diffusion"]["max_slices"], max(1, whole))


def clip_units(config: dict, counts: dict, units: dict, measured_input: list | None) -> dict:
    """The units for the dataset's clip length and the config's classifier input, from units measured
    on MEASURED_SECONDS clips and a classifier input of `measured_input` (None: the config's). Reading
    and checking a clip and its features grow with its length; a mel image for diffusion training
    with its slices, the rest of a training clip's cost (reading it) with its length; a classifier
    step or prediction with its input's size. A round trip takes one slice of any clip, and
    generation makes one-slice clips: their units stay."""
    length = counts["clip_seconds"] / MEASURED_SECONDS
    slices, measured = slices_per_clip(config, counts["clip_seconds"]), slices_per_clip(config, MEASURED_SECONDS)
    per_slice = units.get("mel_image_seconds_per_slice", 0.0)  # 0 for units measured without it: all grows with length
    reading = max(0.0, units["mel_image_seconds_per_clip"] - measured * per_slice)
    shape = FeatureSpec(**config["features"]).shape
    size = float(np.prod(shape)) / float(np.prod(measured_input or shape))
    scaled = dict(units)
    scaled["manifest_seconds_per_clip"] = units["manifest_seconds_per_clip"] * length
    scaled["features_seconds_per_clip"] = units["features_seconds_per_clip"] * length
    scaled["mel_image_seconds_per_clip"] += reading * (length - 1) + per_slice * (slices - measured)
    scaled["train_seconds_per_clip"] = units["train_seconds_per_clip"] * size
    scaled["predict_seconds_per_clip"] = units["predict_seconds_per_clip"] * size
    return scaled


def split_sizes(config: dict, split: str, counts: dict) -> dict:
    """Expected train, val and test clips of a split under the config's protocol."""
    base, clips_per_class = parse_split_name(split)
    protocol, total = config["protocol"], sum(counts["fold_clips"].values())
    if base != "random" and int(base[4:]) not in counts["fold_clips"]:
        sys.exit(f"split {split}: the dataset has no clip in fold {base[4:]}")
    test = counts["fold_clips"][int(base[4:])] if base != "random" else round(protocol["test_fraction"] * total)
    fraction = protocol["val_fraction"]
    if clips_per_class:  # exactly N per class, validation recordings from the rest: about N f / (1 - f) per class
        train = min(counts["classes"] * clips_per_class, round((total - test) * (1 - fraction)))
        return {"train": train, "val": round(train * fraction / (1 - fraction)), "test": test}
    val = round(fraction * (total - test))
    return {"train": total - test - val, "val": val, "test": test}


def measure(config: dict, machine: torch.device, quick: bool, classes: int) -> tuple[dict, dict, list[str]]:
    units, ratios, notes = {}, {}, []
    threads = config["threads"]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        files = write_clips(workdir / "clips", 8 if quick else 128)  # many: worker start-up varies per call
        with threads_of(config, "manifest"):
            units["manifest_seconds_per_clip"] = slope(machine, lambda p: [inspect_audio(f, 5) for f in p], files)
        extractor = FeatureExtractor(FeatureSpec(**config["features"]))
        with threads_of(config, "features"):
            workers = worker_processes(threads.get("features", 1))
            units["features_seconds_per_clip"] = slope(machine, lambda p: extractor.from_files(p, None, workers), files)
        log("manifest and features", units)

        spec, unet, note = start_model(config, "init_from", classes)
        notes.append(note)
        device, max_slices = section_device(config, "diffusion", machine), config["diffusion"]["max_slices"]
        with threads_of(config, "train_diffusion"):
            workers = worker_processes(threads.get("train_diffusion", 1))
            units["mel_image_seconds_per_clip"] = slope(
                device, lambda p: training_images(p, spec, max_slices, device, workers), files
            )
            imager, slices = MelImager(spec).to(device), source_slices(files, spec)
            with torch.inference_mode():  # one slice's image, as training_images makes it
                units["mel_image_seconds_per_slice"] = slope(
                    device, lambda s: [imager.audio_to_image(one[None].to(device)).cpu() for one in s], slices
                )
            if not config["diffusion"]["pretrained"]:
                batch, precision = config["diffusion"]["batch_size"], config["diffusion"]["precision"]
                timed_batch = (
                    min(batch, 2) if quick else batch
                )  # on a CPU the cost per sample hardly depends on the batch
                step = diffusion_step_seconds(config, spec, unet, device, timed_batch, 1 if quick else 5, precision)
                units["diffusion_step_seconds"] = step * batch / timed_batch
                if reduced_dtype(device, precision) is not None:
                    fp32 = diffusion_step_seconds(config, spec, unet, device, timed_batch, 1 if quick else 5, "fp32")
                    ratios[f"diffusion_step_fp32_over_{precision}"] = fp32 / step
        log("diffusion", units, ratios)

        if config["diffusion"]["pretrained"]:
            spec, unet, note = start_model(config, "pretrained", 0)
            notes.append(note)
        with threads_of(config, "features_round_trip"):

            def rebuild(paths):  # what features_round_trip does to clips on the CPU: decode, mel image, Griffin-Lim
                return round_trip(source_slices(paths, spec), MelImager(spec))

            units["round_trip_seconds_per_clip"] = slope(torch.device("cpu"), rebuild, files[:8])
        folder, device = workdir / "model", section_device(config, "generate", machine)
        names = [f"class{k}" for k in range(class_count(unet))]
        save_pipeline(folder, unet, DDIMScheduler(clip_sample=False), spec, classes=names)
        generate = dict(config["generate"])
        if quick:  # per sample, a CPU's pass costs about the same at any batch
            generate |= {"steps": 2, "batch_size": min(2, generate["batch_size"])}
        with threads_of(config, "interpolate"):
            units |= generation_units(load_pipeline(folder), generate, device, 1 if quick else 5)
            if config["diffusion"]["conditioning"] == "class" and generate["guidance_scale"] != 1:
                ratios["guided_over_conditional_pass"] = (
                    units["decoding_pass_seconds_per_sample"] / units["unet_pass_seconds_per_sample"]
                )
            if not quick:
                count = min(config["generate"]["pairs_per_class"], 2 * generate["batch_size"])
                measured, sources = generation_check(workdir, folder, generate, device, count, files[:8])
                modelled = generated_clip_seconds(units, walked_steps(generate), sources, count)
                ratios["generate_class_measured_over_modelled"] = measured / modelled
        log("generation", units, ratios)

        device, precision = section_device(config, "classifier", machine), config["classifier"]["precision"]
        clips = 128 if quick else 2048
        with threads_of(config, "train_classifier"):
            units |= classifier_units(config, device, precision, clips, classes)
            if reduced_dtype(device, precision, cpu_bf16=True) is not None:
                fp32 = classifier_units(config, device, "fp32", clips, classes)["train_seconds_per_clip"]
                ratios[f"classifier_train_fp32_over_{precision}"] = fp32 / units["train_seconds_per_clip"]
        log("classifier", units, ratios)
        units["job_start_seconds"] = job_start_seconds(device)
    return units, ratios, notes


def project(config: dict, counts: dict, units: dict, on_gpu: dict, cores: int, measured_input=None) -> dict:
    """Minutes and jobs per stage for the whole config, and its wall time: the jobs of GPU stages one
    after another, the others on `cores` cores beside them (a CPU-only machine: all on its cores). The
    units are scaled to the dataset's clips (clip_units). Jobs as the workflow makes them: a generating
    job per split and generated set (every class, one start), a classifier job per split and arm (every
    seed, one start), a judges' job per split (both halves), a scoring job per split, set and scored origin."""
    units = clip_units(config, counts, units, measured_input)
    splits = {s: split_sizes(config, s, counts) for s in split_names(config["protocol"])}
    generate, pairs_per_class, classes = config["generate"], config["generate"]["pairs_per_class"], counts["classes"]
    added, start, sets = classes * pairs_per_class, units["job_start_seconds"], generate["sets"]
    generators = sorted({ARMS[a].generator for a in config["arms"]} - {None})
    decoded, imaged = set(generators) & set(MODEL_GENERATORS), set(generators) & set(IMAGE_GENERATORS)
    scored = len(set(generators) | ({"round_trip"} if imaged else set())) + 1  # and the pairs' first clips
    clips = sum(counts["fold_clips"].values())
    stages = ["manifest", "features", "train_diffusion", "interpolate", "reconstruct", "sample", "features_round_trip"]
    seconds_of = dict.fromkeys([*stages, "train_judge", "score_generated", "train_classifier"], 0.0)
    jobs_of = dict.fromkeys(seconds_of, 0)
    seconds_of["manifest"] = clips * units["manifest_seconds_per_clip"]
    seconds_of["features"] = clips * units["features_seconds_per_clip"]
    jobs_of["manifest"] = jobs_of["features"] = 1
    epochs, seeds = config["classifier"]["epochs"], len(config["seeds"])

    def add(stage: str, jobs: int, seconds_per_job: float) -> None:
        seconds_of[stage] += jobs * (start + seconds_per_job)
        jobs_of[stage] += jobs

    def training_seconds(train: int, evaluated: int) -> float:  # one run, predicting after every epoch
        return epochs * (train * units["train_seconds_per_clip"] + evaluated * units["predict_seconds_per_clip"])

    for size in splits.values():
        inverted, firsts = drawn_sources(
            pairs_per_class, size["train"] // classes, counts["clips_per_recording"], generate["seed"]
        )
        if decoded and not config["diffusion"]["pretrained"]:
            steps = config["diffusion"]["steps"] * units["diffusion_step_seconds"]
            add("train_diffusion", 1, size["train"] * units["mel_image_seconds_per_clip"] + steps)
        for generator, stage, inverts, decodes in (
            ("diffusion", "interpolate", inverted, pairs_per_class),
            ("reconstruction", "reconstruct", firsts, firsts),
        ):
            if generator in generators:  # a reconstruction inverts and decodes each pair's first clip once
                per_clip = generated_clip_seconds(units, walked_steps(generate), inverts, decodes)
                if generator == "diffusion" and generate.get("mode") == "sample":  # as the sample stage
                    per_clip = generated_clip_seconds(units, generate["steps"], 0, 1)
                add(stage, sets, classes * decodes * per_clip)
        if "sample" in generators:  # nothing inverted, every clip decoded through the whole schedule
            add("sample", sets, classes * pairs_per_class * generated_clip_seconds(units, generate["steps"], 0, 1))
        if imaged:
            add("features_round_trip", sets, classes * firsts * units["round_trip_seconds_per_clip"])
        if generators:  # one job, two judges, each on half the training clips, predicting the other half at the end
            judged = training_seconds(size["train"] // 2, size["val"] + size["test"])
            add("train_judge", 1, 2 * judged + size["train"] * units["predict_seconds_per_clip"])
            add("score_generated", sets * scored, added * units["predict_seconds_per_clip"])
        for arm in config["arms"]:
            train = size["train"] + (added if ARMS[arm].generator else 0)
            add("train_classifier", 1, seeds * training_seconds(train, size["val"] + size["test"]))
    threads = config["threads"]
    gpu = [stage for stage, section in GPU_STAGES.items() if on_gpu[section]]
    beside = [stage for stage in seconds_of if stage not in gpu and stage not in ("manifest", "features")]
    # the rules' threads settings
    threads_from = {"reconstruct": "interpolate", "sample": "interpolate", "train_judge": "train_classifier"}
    core_seconds = sum(seconds_of[stage] * threads.get(threads_from.get(stage, stage), 1) for stage in beside)
    first = seconds_of["manifest"] + seconds_of["features"]  # everything waits for these
    wall = first + max(sum(seconds_of[stage] for stage in gpu), core_seconds / cores)
    return {
        "stage_minutes": {k: round(v / 60, 2) for k, v in seconds_of.items()},
        "stage_jobs": jobs_of,
        "gpu_jobs": sum(jobs_of[stage] for stage in gpu),
        "start_minutes_on_the_gpu": round(sum(jobs_of[stage] for stage in gpu) * start / 60, 1),
        "on_the_gpu": gpu,
        "runs": {"splits": len(splits), "arms": len(config["arms"]), "seeds": len(config["seeds"]), "sets": sets},
        "projected_hours": round(wall / 3600, 3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="+", default=[str(ROOT / "config" / "urbansound8k.yaml")])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda: the machine's device")
    parser.add_argument("--quick", action="store_true", help="fewer and smaller timings, scaled up (for CPUs)")
    parser.add_argument("--cores", type=int, help="cores the projection may use (default: the machine's)")
    parser.add_argument(
        "--manifest", help="project for this manifest's folds, classes and clip seconds (default: all UrbanSound8K)"
    )
    parser.add_argument("--clips", type=int, help="project for this many clips, dealt evenly over --folds (8,732)")
    parser.add_argument("--folds", type=int, help="folds of --clips, numbered from 1 (10)")
    parser.add_argument("--classes", type=int, help="classes, balanced (default: the manifest's, else 10)")
    parser.add_argument("--clip-seconds", type=float, help="clip length (default: the manifest's mean, else 4 s)")
    parser.add_argument(
        "--units",
        help="project from the units of an earlier run's JSON line (a config with the same model sizes, "
        "precisions and threads) instead of measuring; the machine is that run's",
    )
    args = parser.parse_args()
    if args.manifest and (args.clips or args.folds):
        parser.error("--clips and --folds are for projecting without a manifest")
    if any(n is not None and n <= 0 for n in (args.clips, args.folds, args.classes, args.clip_seconds)):
        parser.error("--clips, --folds, --classes and --clip-seconds must be positive")
    config = merged_config(args.config)
    counts = dataset_counts(args.manifest, args.clips, args.folds, args.classes, args.clip_seconds)
    if args.units:
        earlier = json.loads(Path(args.units).read_text().strip().splitlines()[-1])
        units, ratios, notes, name = earlier["units"], earlier["ratios"], earlier["diffusion"], earlier["machine"]
        machine = torch.device("cpu" if name.startswith("CPU") else "cuda")
        args.cores = args.cores or earlier["cores"]
        measured_input = earlier.get("classifier_input", list(FeatureSpec(**config["features"]).shape))  # older lines
    else:
        machine = resolve_device(args.device)
        units, ratios, notes = measure(config, machine, args.quick, counts["classes"])
        name = torch.cuda.get_device_name(machine) if machine.type == "cuda" else f"CPU, {os.cpu_count()} cores"
        measured_input = list(FeatureSpec(**config["features"]).shape)
    args.cores = args.cores or os.cpu_count()
    on_gpu = {section: section_device(config, section, machine).type == "cuda" for section in set(GPU_STAGES.values())}
    projection = project(config, counts, units, on_gpu, args.cores, measured_input)
    dataset = args.manifest or ("even folds" if args.clips or args.folds else "UrbanSound8K")
    summary = {"config": args.config, "dataset": dataset, "machine": name}
    summary |= {"diffusion": notes, "quick": args.quick, "cores": args.cores}
    summary |= {
        "units": {k: round(v, 6) for k, v in units.items()},
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "classifier_input": measured_input,
        "sizes": {
            "folds": len(counts["fold_clips"]),
            "clips": sum(counts["fold_clips"].values()),
            "classes": counts["classes"],
            "clip_seconds": round(counts["clip_seconds"], 3),
        },
    }
    summary |= projection | {"projected_over_3_hours": round(projection["projected_hours"] / 3, 3)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
