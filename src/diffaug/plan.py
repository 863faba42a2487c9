"""Checks before any job: settings that cannot work together, a plan that the dataset cannot supply,
devices that this machine cannot give."""

from __future__ import annotations

from importlib.resources.abc import Traversable
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from . import probes
from .arms import ARMS, IMAGE_GENERATORS
from .layouts import URBANSOUND8K_METADATA, Catalogue, DatasetError, read_dataset, urbansound8k_catalogue
from .mel_spec import MelSpec
from .pairs import count_pairs
from .params import imports_pipeline, sorted_keys, written_config
from .schema import SCHEMA, ConfigError, feature_size_problem, input_frames, validate_config, with_defaults
from .splits import LowDataError, make_split, split_names
from .synthetic import SyntheticSpec, synthesize_metadata


def check_config(config: dict, schema_path: str | Path | Traversable = SCHEMA) -> dict:
    """Raise ConfigError for a config that the schema refuses (validate_config), else for settings that
    pass it one by one but cannot work together, listing each as `key: problem`; return the config with
    command-line text coerced and the schema's defaults filled in (in place)."""
    validate_config(config, schema_path)
    lines = [f"  {problem}" for problem in settings_problems(config)]
    if lines:
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    return config


def settled_config(config: dict, schema_path: str | Path | Traversable = SCHEMA) -> dict:
    """Check `config` (check_config) and sort its keys, in place, so that params taken from it compare by
    value; return it as its files wrote it (written_config), what the sections in rule params come from."""
    written = written_config(config, schema_path)
    canonical = sorted_keys(check_config(config, schema_path))
    config.clear()
    config.update(canonical)
    return written


def settings_problems(config: dict) -> list[str]:
    """Settings of a config that the schema let through, with its defaults filled in, that cannot work:
    a mel image that Griffin-Lim cannot invert, two pipelines to start from, and _consistency_problems."""
    problems = []
    try:
        MelSpec(**config["diffusion"]["mel"])
    except ValueError as error:
        problems.append(f"diffusion.mel: {error}")
    if config["diffusion"]["pretrained"] and config["diffusion"]["init_from"]:
        problems.append(
            "diffusion: pretrained and init_from are both set; choose one (pretrained generates with a "
            "pipeline as it is, init_from fine-tunes it on each split's training clips)"
        )
    return problems + _consistency_problems(config) + _conditioning_problems(config)


def _conditioning_problems(config: dict) -> list[str]:
    """Settings that need a class-conditional diffusion model where none is trained, and the reverse."""
    diffusion, generate = config["diffusion"], config["generate"]
    if diffusion["conditioning"] == "class":
        if diffusion["pretrained"]:
            return [
                "diffusion.conditioning: class trains a class embedding, but diffusion.pretrained generates with "
                "a pipeline as it is; fine-tune it with diffusion.init_from instead"
            ]
        if generate["mode"] == "sample" and "diffusion_sample" in config["arms"]:
            return [
                "generate.mode: sample makes the diffusion arm sample as the diffusion_sample arm does (the same "
                "clips); keep mode interpolate to compare the two"
            ]
        if generate["guidance_scale"] != 1 and diffusion["label_dropout"] == 0:
            return [
                "generate.guidance_scale: guidance needs the model's prediction without a class, which it learns "
                "only from dropped labels; set diffusion.label_dropout above 0 (e.g. 0.1)"
            ]
        return []
    needs = [f"generate.guidance_scale {generate['guidance_scale']}"] if generate["guidance_scale"] != 1 else []
    needs += ["generate.mode sample"] if generate["mode"] == "sample" else []
    needs += ["the diffusion_sample arm"] if "diffusion_sample" in config["arms"] else []
    return [f"{need}: needs a class-conditional model; set diffusion.conditioning: class" for need in needs]


def _consistency_problems(config: dict) -> list[str]:
    """Settings that pass the schema one by one but not together."""
    problems = [problem] if (problem := feature_size_problem(config["features"])) else []
    dataset = config["dataset"]
    listing = dataset["metadata"]
    if listing and (Path(listing).is_absolute() or ".." in Path(listing).parts):
        problems.append(f"dataset.metadata: {listing} must be a path relative to dataset.root, inside it")
    if dataset["download"] and dataset["layout"] != "urbansound8k":
        problems.append(f"dataset.download: only UrbanSound8K can be downloaded; {dataset['layout']} is read from root")
    classifier = config["classifier"]
    if classifier["train_on_validation"] and classifier["epoch_choice"] != "last":
        problems.append(
            "classifier.train_on_validation: the validation clips can join training only when no epoch is chosen "
            "on them; set classifier.epoch_choice: last"
        )
    if classifier["model"] == "sb_cnn_2017":
        frames = input_frames(config["features"])
        patch = classifier["sb_cnn_2017"]["patch_frames"]
        if frames < patch:
            problems.append(
                f"classifier.sb_cnn_2017.patch_frames: a patch of {patch} frames is longer than the {frames} frames "
                "of a classifier input (features.num_samples / hop_length); lengthen the input or shorten the patch"
            )
    sets = config["generate"]["sets"]
    if any(ARMS[arm].generator for arm in config["arms"]) and len(config["seeds"]) % sets:
        problems.append(
            f"generate.sets: {sets} generated sets for {len(config['seeds'])} seeds: the k-th seed trains on "
            "set k mod generate.sets, so the sets would hold unequal numbers of seeds (and an interval over sets fewer "
            "degrees of freedom than it seems); use a number of seeds that is a multiple of it"
        )
    through_image = any(ARMS[arm].generator in IMAGE_GENERATORS for arm in config["arms"])
    if through_image and not imports_pipeline(config["diffusion"]):
        try:
            problem = clip_length_problem(MelSpec(**config["diffusion"]["mel"]), config["features"])
        except ValueError:
            problem = None  # a mel that cannot work at all is reported as such
        problems += [f"diffusion.mel: {problem}"] if problem else []
    return problems


def clip_length_problem(mel, features: dict) -> str | None:
    """Why clips made from one slice of the mel image `mel` (a MelSpec) cannot feed a classifier that
    takes `features.num_samples` samples, if they cannot: shorter, they would end in silence that
    marks every generated clip."""
    generated = mel.slice_samples / mel.sample_rate
    needed = features["num_samples"] / features["sample_rate"]
    if generated >= needed:
        return None
    return (
        f"generated clips last {generated:.2f} s (one mel image: x_res {mel.x_res} x hop_length {mel.hop_length} "
        f"at {mel.sample_rate} Hz), shorter than the classifier's {needed:.2f} s input (features.num_samples "
        f"{features['num_samples']} at {features['sample_rate']} Hz); widen the image or its hop, or shorten the input"
    )


def planned_catalogue(dataset: dict, root: str | Path):
    """The dataset's catalogue (layouts.Catalogue) before anything is written: synthesized for the
    synthetic layout, read (and checked) for the others; None when there is none yet (a download to come)."""
    if dataset["layout"] == "synthetic":
        meta = synthesize_metadata(SyntheticSpec(**dataset["synthetic"])).astype(str)
        catalogue = urbansound8k_catalogue(meta, Path(root).resolve(), Path(root) / "metadata")
        return Catalogue(catalogue.clips, catalogue.classes)  # no files on disk yet
    if dataset["layout"] == "urbansound8k" and not (Path(root) / URBANSOUND8K_METADATA).is_file():
        return None
    return read_dataset(dataset, root)


def plan_problems(config: dict, clips: pd.DataFrame) -> list[str]:
    """Settings that cannot work with this dataset, found from its catalogue's clips before any work:
    test folds without clips, low-data settings that a class cannot supply, splits without
    validation recordings, more pairs asked than exist."""
    protocol, problems = config["protocol"], []
    if (classes := clips["class"].nunique()) < 2:
        return [f"dataset: the dataset holds clips of {classes} class(es); a classifier needs two or more"]
    if protocol["kind"] == "kfold":
        folds = sorted(set(clips["fold"]))
        for fold in protocol["test_folds"]:
            if fold not in folds:
                problems.append(
                    f"protocol.test_folds: fold {fold} holds no clip of the dataset (its folds: "
                    f"{', '.join(map(str, folds))}); remove it"
                )
        if problems:
            return problems
    generating = any(ARMS[a].generator for a in config["arms"])
    pairs_per_class = config["generate"]["pairs_per_class"]
    for name in split_names(protocol):
        try:
            split = make_split(clips, name, protocol)
        except LowDataError as error:
            problems.append(f"protocol.train_per_class: {error}")
            continue
        train = clips[clips["id"].isin(set(split["train"]))]
        if with_defaults("classifier", config["classifier"])["epoch_choice"] == "validation":
            problems += _validation_problems(name, train, clips[clips["id"].isin(set(split["val"]))])
        if generating:
            problems += _pair_problems(name, train, split["judge_halves"], pairs_per_class)
    return problems


def _pair_problems(name: str, train: pd.DataFrame, halves: list[list[str]], pairs_per_class: int) -> list[str]:
    """Classes of a split that cannot give `pairs_per_class` pairs of clips from different recordings within
    a judge half (so that the other half's judge heard neither), or whose clips lie all in one half
    (so that one judge never heard the class)."""
    problems = []
    half_of = {clip: half for half, clips in enumerate(halves) for clip in clips}
    for class_name, group in train.assign(half=train["id"].map(half_of)).groupby("class"):
        available = [count_pairs(group[group["half"] == half]) for half in (0, 1)]
        if group["half"].nunique() < 2:
            problems.append(
                f"arms: split {name}: class {class_name} has training clips of only one recording, so one judge of "
                "generated clips would never hear it; generating arms need two recordings per class"
            )
        elif sum(available) < pairs_per_class:
            problems.append(
                f"generate.pairs_per_class: {pairs_per_class} pairs asked, but split {name} has only {sum(available)} "
                f"pairs of {class_name} training clips from different recordings within a judge's half "
                f"({available[0]} and {available[1]}: a pair's clips lie in one half, judged by a model trained on the "
                "other); lower it"
            )
    return problems


def _validation_problems(name: str, train: pd.DataFrame, val: pd.DataFrame) -> list[str]:
    """A split whose epoch is chosen on validation clips needs some of every class it trains on."""
    if val.empty:
        return [f"protocol.val_fraction: split {name} has no validation recording; raise it"]
    missing = sorted(set(train["class"]) - set(val["class"]))
    if not missing:
        return []
    return [
        f"protocol.val_fraction: split {name} has no validation clip of {', '.join(missing)} (a class needs two "
        "training-side recordings to give one to validation); raise val_fraction, or set classifier.epoch_choice: "
        "last"
    ]


def data_root(config: dict) -> str:
    """The dataset's folder: the synthetic dataset's, written under `results`, or dataset.root."""
    dataset = config["dataset"]
    if dataset["layout"] == "synthetic":
        return f"{config['results']}/data/synthetic"
    if dataset["root"]:
        return dataset["root"]
    raise ConfigError(f"invalid config:\n  dataset.root: required when dataset.layout is {dataset['layout']}")


def require_dataset(dataset: dict, index: str) -> None:
    """Raise DatasetError where the layout's index file (layouts.index_file) is not where the config points,
    unless a download will bring it."""
    layout = dataset["layout"]
    if layout == "urbansound8k" and not dataset["download"] and not Path(index).is_file():
        raise DatasetError(
            f"{index} not found: point dataset.root at an extracted UrbanSound8K, or set dataset.download: true"
        )
    if layout in ("esc50", "folders") and not Path(index).exists():
        raise DatasetError(f"{index} not found: point dataset.root (and dataset.metadata) at the {layout} layout")


def require_fit(config: dict, catalogue: Catalogue | None) -> None:
    """Raise ConfigError listing plan_problems where the config does not fit the dataset's catalogue."""
    problems = plan_problems(config, catalogue.clips) if catalogue else []
    if problems:
        raise ConfigError("config does not fit the dataset:\n" + "\n".join(f"  {p}" for p in problems))


def device_problems(devices: dict[str, str], cuda_here: bool) -> list[str]:
    """`cuda` device settings (by config section) on a machine without CUDA."""
    return [
        f"{section}.device: 'cuda' but this machine has no CUDA device; use 'auto' or 'cpu'"
        for section, device in devices.items()
        if device == "cuda" and not cuda_here
    ]


class MachineFit(NamedTuple):
    """What planning makes of the device settings on this machine."""

    gpu: bool
    """Whether `auto` devices get a GPU."""
    message: str = ""
    """A warning, or the reason the run stops."""
    fatal: bool = False


def machine_fit(devices: dict[str, str], *, local: bool, planning: bool, dry_run: bool) -> MachineFit:
    """Whether `auto` devices get a GPU: on a cluster, whose scheduler gives one, yes; in a local run, if
    this machine has CUDA (asked by the process that plans the run), or in a dry run of a config that
    insists on CUDA, which plans a GPU study on a laptop as on the GPU machine it asks for."""
    if not local:
        return MachineFit(True)
    # probes.cuda_available is looked up when called, so that a test can stand in for the machine.
    here = planning and bool({"cuda", "auto"} & set(devices.values())) and probes.cuda_available()
    listed = "".join(f"\n  {p}" for p in device_problems(devices, here)) if planning else ""
    if listed and dry_run:
        warning = "warning: config does not fit this machine (a real run here is refused):"
        return MachineFit(True, f"{warning}{listed}\n  this dry run plans the jobs as on a machine with CUDA")
    if listed:
        return MachineFit(False, f"config does not fit this machine:{listed}", fatal=True)
    return MachineFit(here)
