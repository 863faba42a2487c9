"""What each rule's params hold: the settings it reads, so that a changed setting reruns exactly the jobs
that read it (Snakemake compares params by their text). Most come from the config as its files wrote it
(written_config), so that a default added to the schema reruns nothing; the manifest's and the pairs'
come from the filled config, whose few keys they read in full."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib.resources.abc import Traversable
from pathlib import Path

from .schema import SCHEMA, coerced_config, section_schema


def written_config(config: dict, schema_path: str | Path | Traversable = SCHEMA) -> dict:
    """The config as its files and `--config` wrote it, every mapping's keys sorted (sorted_keys): what
    rule params carry. Taken before the schema's defaults are filled in, so that a default added to the
    schema changes no params and reruns nothing (the steps fill the defaults in themselves). First refused
    if too large to walk (refuse_oversized), and its command-line text coerced (coerce_text, in place), so
    that `--config` gives the same params as a config file."""
    return sorted_keys(coerced_config(config, schema_path))


def _without_defaults(section: str, values: dict, keys: tuple[str, ...]) -> dict:
    """`values` without those of `keys` that hold the schema's default: keys added after results
    were made, left out of rule params at their defaults so that those results keep their params."""
    properties = section_schema(section)["properties"]
    return {key: value for key, value in values.items() if key not in keys or value != properties[key]["default"]}


def sorted_keys(value):
    """`value` with every mapping's keys in sorted order, all the way down (lists keep theirs): the
    same settings then look the same to Snakemake, whatever order a config file wrote them in."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


def features_params(features: dict) -> dict:
    """The features section as written, as rule params: `log` left out while false (its default), so
    the published features' params read as they did before the key existed and nothing reruns."""
    return _without_defaults("features", features, ("log",))


def pretrained_params(diffusion: dict) -> dict:
    """import_pretrained's params from the diffusion section as written: the pipeline to import
    (diffusion.pretrained or init_from) and its hub `revision` only where one is pinned, so that an
    import made before the key existed does not rerun."""
    pinned = {"revision": diffusion["revision"]} if diffusion.get("revision") else {}
    return {"pipeline": diffusion["pretrained"] or diffusion.get("init_from")} | pinned


PUBLISHED_CNN_KEYS = ("widths", "hidden")
"""The classifier settings that only the published network reads."""


def classifier_params(classifier: dict) -> dict:
    """The classifier section as written, as rule params: the `sb_cnn` or `sb_cnn_2017` block only when
    that model is chosen (and the published network's widths only when neither is), and `model`, `normalise`,
    `epoch_choice` and `train_on_validation` left out at their defaults. The published network's params then read as
    they did before these keys existed, and an sb_cnn setting reruns nothing that trains the
    published network."""
    model = classifier.get("model", "published_cnn")
    blocks = {"sb_cnn", "sb_cnn_2017"} - {model}
    unused = (*blocks, *PUBLISHED_CNN_KEYS) if model in ("sb_cnn", "sb_cnn_2017") else tuple(blocks)
    read = {key: value for key, value in classifier.items() if key not in unused}
    return _without_defaults("classifier", read, ("model", "normalise", "epoch_choice", "train_on_validation"))


def split_params(protocol: dict) -> dict:
    """The protocol keys, as written, that make_split reads (a split's name carries its fold and N, so
    adding a fold or an N leaves existing splits alone); `short_classes` and `group_by_recording` only
    when they are not at their defaults."""
    params = {k: protocol[k] for k in ("kind", "seed", "test_fraction", "val_fraction")}
    newer = ("short_classes", "group_by_recording")
    written = {key: value for key, value in protocol.items() if key in newer}
    return params | _without_defaults("protocol", written, newer)


def prepare_params(dataset: dict) -> dict:
    """prepare_dataset's params: where the dataset comes from, and the synthetic one's settings."""
    return {key: dataset.get(key) for key in ("layout", "root", "download", "synthetic")}


LAYOUT_KEYS = {"esc50": ("esc10",), "folders": ("metadata", "folds")}
"""The dataset keys that only one layout reads."""


def manifest_params(dataset: dict, clip_ids: Iterable[str] | None) -> dict:
    """What the manifest reads of the (filled) dataset section: the layout's own keys only for that layout.
    A class-folder tree has no file to date (a folder's time changes only with its own entries): a digest
    of its clips' ids stands in, so that adding or removing a clip anywhere reruns the manifest."""
    layout = dataset["layout"]
    params = {key: dataset[key] for key in ("layout", "on_bad_file", "max_seconds", *LAYOUT_KEYS.get(layout, ()))}
    if layout == "folders" and not dataset["metadata"] and clip_ids is not None:
        params["clips"] = hashlib.sha1("\n".join(sorted(clip_ids)).encode()).hexdigest()
    return params


def pairs_params(generate: dict) -> dict:
    """The pairs rule's params: how many pairs per class, and the seed that draws them."""
    return {"pairs_per_class": generate["pairs_per_class"], "seed": generate["seed"]}


UNREAD_BY_GENERATION = ("filter", "keep", "sets")
"""generate keys that selection and the classifiers read, not generation."""


def generation_params(generate: dict) -> dict:
    """interpolate's params: the generate section as written but for UNREAD_BY_GENERATION, so that e.g. a
    changed `keep` reruns selection, not generation; `mode` and `guidance_scale` left out at their defaults."""
    read = {key: value for key, value in generate.items() if key not in UNREAD_BY_GENERATION}
    return _without_defaults("generate", read, ("mode", "guidance_scale"))


def reconstruction_params(generate: dict) -> dict:
    """reconstruct's params: generation's but for `alpha`, as a reconstruction mixes nothing, and `mode`,
    as it always inverts its clip."""
    return {key: value for key, value in generation_params(generate).items() if key not in ("alpha", "mode")}


def diffusion_params(diffusion: dict) -> dict:
    """train_diffusion's params: the diffusion section as written, `conditioning` left out at its default
    and `label_dropout` wherever nothing is conditioned, so that models trained before the keys existed
    keep their params."""
    read = _without_defaults("diffusion", diffusion, ("conditioning",))
    return read if "conditioning" in read else {key: value for key, value in read.items() if key != "label_dropout"}


def sampling_params(generate: dict) -> dict:
    """sample's params: generation's but for what sampling does not read (alpha, strength: it walks
    the whole schedule from fresh noise; mode: it always samples)."""
    unread = ("alpha", "strength", "mode")
    return {key: value for key, value in generation_params(generate).items() if key not in unread}


def imports_pipeline(diffusion: dict) -> bool:
    """Whether the run imports a diffusion pipeline (diffusion.pretrained or init_from) rather than training one."""
    return bool(diffusion.get("pretrained") or diffusion.get("init_from"))


def mel_params(diffusion: dict) -> dict | None:
    """The mel image settings that the round trip reads: diffusion.mel as written, or None where a pipeline
    is imported (fine-tuning keeps its image, read from the model)."""
    return None if imports_pipeline(diffusion) else diffusion["mel"]
