"""Config checking against the workflow's JSON schema, with messages that name the key."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pandas as pd
import yaml


class ConfigError(ValueError):
    """A config that does not fit the schema; the message lists every problem by key."""


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"unknown key(s) {', '.join(extra)}; allowed: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"{error.instance!r} is not allowed; choose one of {', '.join(map(repr, error.validator_value))}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is missing")
    return error.message


def check_config(config: dict, schema_path: str | Path) -> dict:
    """Raise ConfigError listing every schema violation as `key: problem`, then any mel settings
    that cannot work; return the config."""
    from .mel_image import MelSpec

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    lines = [f"  {_where(e)}: {_describe(e)}" for e in errors]
    if not lines:
        try:
            MelSpec(**config["diffusion"]["mel"])
        except ValueError as error:
            lines.append(f"  diffusion.mel: {error}")
        if config["diffusion"]["pretrained"] and config["diffusion"].get("init_from"):
            lines.append(
                "  diffusion: pretrained and init_from are both set; choose one (pretrained generates with a "
                "pipeline as it is, init_from fine-tunes it on each split's training clips)"
            )
    if lines:
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    return config


def planned_metadata(dataset: dict, root: str | Path) -> pd.DataFrame | None:
    """The dataset's metadata before anything is written: synthesized for the synthetic source,
    read (and checked) for UrbanSound8K; None when there is none yet (a download to come)."""
    from .dataset import METADATA_FILE, read_metadata
    from .synthetic import SyntheticSpec, synthesize_metadata

    if dataset["source"] == "synthetic":
        return synthesize_metadata(SyntheticSpec(**dataset["synthetic"]))
    return read_metadata(root) if (Path(root) / METADATA_FILE).is_file() else None


def plan_problems(config: dict, metadata: pd.DataFrame) -> list[str]:
    """Settings that cannot work with this dataset, found from its metadata before any work:
    test folds without clips, low-data settings that a class cannot supply, splits without
    validation recordings, more pairs asked than exist."""
    from .arms import ARMS
    from .pairs import count_pairs
    from .splits import LowDataError, make_split, split_names

    protocol, problems = config["protocol"], []
    if protocol["kind"] == "kfold":
        folds = sorted(set(metadata["fold"]))
        for fold in protocol["test_folds"]:
            if fold not in folds:
                problems.append(
                    f"protocol.test_folds: fold {fold} holds no clip of the dataset (its folds: "
                    f"{', '.join(map(str, folds))}); remove it"
                )
        if problems:
            return problems
    clips = metadata.rename(columns={"slice_file_name": "id"})
    generating = any(ARMS[v].generated for v in config["variants"])
    per_class = config["generate"]["per_class"]
    for name in split_names(protocol):
        try:
            split = make_split(clips, name, protocol)
        except LowDataError as error:
            problems.append(f"protocol.train_per_class: {error}")
            continue
        if not split["val"]:
            problems.append(f"protocol.val_fraction: split {name} has no validation recording; raise it")
        train = clips[clips["id"].isin(set(split["train"]))]
        for class_name, group in train.groupby("class"):
            available = count_pairs(group)
            if generating and available < per_class:
                problems.append(
                    f"generate.per_class: {per_class} pairs asked, but split {name} has only {available} pairs of "
                    f"{class_name} training clips from different recordings; lower it"
                )
    return problems


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def device_problems(devices: dict[str, str], cuda_here: bool) -> list[str]:
    """`cuda` device settings (by config section) on a machine without CUDA."""
    return [
        f"{section}.device: 'cuda' but this machine has no CUDA device; use 'auto' or 'cpu'"
        for section, device in devices.items()
        if device == "cuda" and not cuda_here
    ]
