"""Config checking against the workflow's JSON schema, with messages that name the key."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import subprocess
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

SCHEMA = files(__package__) / "config.schema.yaml"
"""The config schema: what each key may hold and, for keys a config may leave out, their defaults.
It ships inside the package so that an installed diffaug checks configs without a checkout;
workflow/schemas/config.schema.yaml, which the Snakefile reads, is a link to it."""


class ConfigError(ValueError):
    """A config that does not fit the schema; the message lists every problem by key."""


def is_whole(value) -> bool:
    """An integer as the workflow takes one: not a bool, not a float such as 64.0 (which would reach
    torch's layers as a float)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value) -> bool:
    """A number that no bound check lets through by accident: not a bool, not NaN nor infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": lambda _, value: is_whole(value), "number": lambda _, value: is_finite_number(value)}
    ),
)
"""The schema validator of configs and model.json: NaN passes every bound, so numbers must be finite."""


@cache
def _schema(path: str | Path | Traversable) -> dict:
    return yaml.safe_load((Path(path) if isinstance(path, str) else path).read_text())


def schema_key(error: jsonschema.ValidationError) -> str:
    """The dotted key a schema error is about (config.yaml's or model.json's)."""
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


TEXT_ASKED = {
    "boolean": ("a boolean", "true or false"),
    "integer": ("a whole number", "a whole number such as 8"),
    "number": ("a number", "a number such as 0.5 or 1e-3"),
    "null": ("null", "null"),
}
"""For text where the schema asks for none: what it is not, and how to write what is asked."""


def schema_problem(error: jsonschema.ValidationError) -> str:
    """A schema error's problem in words, saying what is allowed."""
    if error.validator == "type" and isinstance(error.instance, float):
        if not math.isfinite(error.instance):
            return f"{error.instance} is not a finite number"
        if error.instance.is_integer() and "integer" in error.validator_value:
            return f"{error.instance!r} is not a whole number; write {int(error.instance)}"
    if error.validator == "type" and isinstance(error.instance, str):
        asked = [error.validator_value] if isinstance(error.validator_value, str) else error.validator_value
        if set(asked) <= set(TEXT_ASKED):
            what, how = zip(*(TEXT_ASKED[kind] for kind in asked))
            return f"{error.instance!r} is not {' or '.join(what)}; write {' or '.join(how)}"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"unknown key(s) {', '.join(extra)}; allowed: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"{error.instance!r} is not allowed; choose one of {', '.join(map(repr, error.validator_value))}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is missing")
    return error.message


RENAMED_KEYS = {"variants": "arms"}
"""Top-level config keys that were renamed, old name to new: a config that still uses an old name
is stopped with the new one rather than having its setting ignored."""


def check_config(config: dict, schema_path: str | Path | Traversable = SCHEMA) -> dict:
    """Raise ConfigError for a config too large to walk (refuse_oversized) or naming any renamed key
    still in use; else listing every schema violation as `key: problem`, then any mel settings that
    cannot work; return the config with command-line text coerced (coerce_text) and the schema's
    defaults filled in (in place)."""
    from .mel_spec import MelSpec

    refuse_oversized(config)
    schema = _schema(schema_path)
    coerce_text(config, schema)
    renamed = [
        f"  {old}: renamed to {new}; rename the key (in the config file or in --config)"
        for old, new in RENAMED_KEYS.items()
        if old in config
    ]
    if renamed:
        raise ConfigError("invalid config:\n" + "\n".join(renamed))
    validator = StrictValidator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    lines = [f"  {schema_key(e)}: {schema_problem(e)}" for e in errors]
    if not lines:
        _fill_defaults(config, schema)
        try:
            MelSpec(**config["diffusion"]["mel"])
        except ValueError as error:
            lines.append(f"  diffusion.mel: {error}")
        if config["diffusion"]["pretrained"] and config["diffusion"]["init_from"]:
            lines.append(
                "  diffusion: pretrained and init_from are both set; choose one (pretrained generates with a "
                "pipeline as it is, init_from fine-tunes it on each split's training clips)"
            )
        lines += [f"  {problem}" for problem in _consistency_problems(config)]
    if lines:
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    return config


MAX_VALUES = 10_000
"""The most values (mappings, lists and scalars, every YAML alias written out) a config may hold: the
shipped configs hold under 200 (defaults filled in), while aliases of aliases let a file of a few
hundred bytes stand for billions, which any walk through the config (key sorting, the schema check)
would build or visit."""
MAX_DEPTH = 20
"""The deepest nesting a config may have; the schema's deepest key sits 4 levels down."""


def expanded_size(value) -> int:
    """How many values `value` holds written out in full: itself and all that its mappings and lists
    hold, aliases expanded. Each distinct mapping or list is walked once, so that the cost follows the
    file rather than its expansion. Raise ConfigError where it nests deeper than MAX_DEPTH or holds itself."""
    measured: dict[int, tuple[int, int]] = {}  # id -> (values, levels below)
    walking: set[int] = set()

    def measure(node, depth: int) -> tuple[int, int]:
        if not isinstance(node, (dict, list)):
            return 1, 0
        if id(node) in walking:
            raise ConfigError("invalid config:\n  config: holds itself (a YAML alias inside its own anchor)")
        if id(node) not in measured and depth < MAX_DEPTH:
            walking.add(id(node))
            parts = [measure(item, depth + 1) for item in (node.values() if isinstance(node, dict) else node)]
            walking.discard(id(node))
            measured[id(node)] = (1 + sum(size for size, _ in parts), max((1 + below for _, below in parts), default=0))
        if id(node) not in measured or depth + measured[id(node)][1] > MAX_DEPTH:
            raise ConfigError(f"invalid config:\n  config: nests deeper than {MAX_DEPTH} levels")
        return measured[id(node)]

    return measure(value, 0)[0]


def refuse_oversized(config: dict) -> None:
    """Raise ConfigError for a config of more than MAX_VALUES values, naming the key that holds most,
    before anything walks it value by value."""
    if expanded_size(config) > MAX_VALUES:
        sizes = {key: expanded_size(value) for key, value in config.items()}
        largest = max(sizes, key=sizes.get)
        raise ConfigError(
            f"invalid config:\n  config: expands to more than {MAX_VALUES} values (YAML aliases?), "
            f"{sizes[largest]} of them under {largest}; write the settings out"
        )


BOOLEAN_WORDS = {"true": True, "false": False}
"""Text read as a boolean where the schema asks for one, in any case: `--config 'section={flag: true}'`
hands the word over as text. Only these two, which every message asks for, not YAML 1.1's yes/no/on/off."""
NULL_WORDS = ("null", "~")
WHOLE_NUMBER = re.compile(r"[-+]?[0-9]+")


def _resolved(schema: dict, root: dict) -> dict:
    """`schema` with a local `$ref` (#/$defs/...) replaced by what it points to, beside its own keywords."""
    if "$ref" not in schema:
        return schema
    target = root
    for part in schema["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return _resolved(target, root) | {key: value for key, value in schema.items() if key != "$ref"}


def _types(schema: dict, root: dict) -> set[str]:
    """The JSON types that `schema` takes, counting those of its anyOf/oneOf branches."""
    schema = _resolved(schema, root)
    kind = schema.get("type", [])
    types = {kind} if isinstance(kind, str) else set(kind)
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        types |= _types(branch, root)
    return types


def _from_text(text: str, types: set[str]):
    """`text` as the null, boolean or number that `types` ask for, where it spells one; else unchanged."""
    word = text.strip().lower()
    if "null" in types and word in NULL_WORDS:
        return None
    if "string" in types:
        return text
    if "boolean" in types and word in BOOLEAN_WORDS:
        return BOOLEAN_WORDS[word]
    if types & {"integer", "number"} and WHOLE_NUMBER.fullmatch(word):
        return int(word)
    if "number" in types:
        try:
            number = float(word)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    return text


def coerce_text(value, schema: dict, root: dict | None = None):
    """`value` with text turned into the boolean, number or null that the schema asks for where it
    spells one (in place; returned): `--config` hands nested values over as text, e.g.
    `--config 'generate={quantize: true}'` gives "true", which should read as a config file's true."""
    root = schema if root is None else root
    schema = _resolved(schema, root)
    if isinstance(value, dict):
        properties, others = schema.get("properties", {}), schema.get("additionalProperties")
        for key, item in value.items():
            subschema = properties.get(key, others)
            if isinstance(subschema, dict):
                value[key] = coerce_text(item, subschema, root)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value[:] = [coerce_text(item, schema["items"], root) for item in value]
    elif isinstance(value, str):
        return _from_text(value, _types(schema, root))
    return value


def written_config(config: dict, schema_path: str | Path | Traversable = SCHEMA) -> dict:
    """The config as its files and `--config` wrote it, every mapping's keys sorted (sorted_keys): what
    rule params carry. First refused if too large to walk (refuse_oversized), and its command-line text
    coerced (coerce_text, in place), so that `--config` gives the same params as a config file."""
    refuse_oversized(config)
    coerce_text(config, _schema(schema_path))
    return sorted_keys(config)


MAX_CLIP_VALUES = 2**28
"""Most values (1 GiB in float32) in the largest tensor that making one clip's features builds: its STFT
frames (n_fft x frames) or its mel spectrogram (n_mels x frames)."""


def feature_size_problem(features: dict) -> str | None:
    """Why feature settings, each within its bounds, would still make clips too large, if they would."""
    frames = 1 + features["num_samples"] // features["hop_length"]
    per_frame = max(features["n_fft"], features["n_mels"])
    if per_frame * frames <= MAX_CLIP_VALUES:
        return None
    return (
        f"features: one clip would take {frames} frames (num_samples / hop_length) of {per_frame} values "
        f"(n_fft or n_mels), over the {MAX_CLIP_VALUES} values that making one clip's features may take"
    )


def _consistency_problems(config: dict) -> list[str]:
    """Settings that pass the schema one by one but not together."""
    from .arms import ARMS, IMAGE_SOURCES
    from .mel_spec import MelSpec

    problems = [problem] if (problem := feature_size_problem(config["features"])) else []
    dataset = config["dataset"]
    listing = dataset["metadata"]
    if listing and (Path(listing).is_absolute() or ".." in Path(listing).parts):
        problems.append(f"dataset.metadata: {listing} must be a path relative to dataset.root, inside it")
    if dataset["download"] and dataset["source"] != "urbansound8k":
        problems.append(f"dataset.download: only UrbanSound8K can be downloaded; {dataset['source']} is read from root")
    classifier = config["classifier"]
    if classifier["train_on_validation"] and classifier["epoch_choice"] != "last":
        problems.append(
            "classifier.train_on_validation: the validation clips can join training only when no epoch is chosen "
            "on them; set classifier.epoch_choice: last"
        )
    if classifier["model"] == "sb_cnn_2017":
        frames = 1 + config["features"]["num_samples"] // config["features"]["hop_length"]
        patch = classifier["sb_cnn_2017"]["patch_frames"]
        if frames < patch:
            problems.append(
                f"classifier.sb_cnn_2017.patch_frames: a patch of {patch} frames is longer than the {frames} frames "
                "of a classifier input (features.num_samples / hop_length); lengthen the input or shorten the patch"
            )
    sets = config["generate"]["replicates"]
    if any(ARMS[arm].generated for arm in config["arms"]) and len(config["seeds"]) % sets:
        problems.append(
            f"generate.replicates: {sets} generated sets for {len(config['seeds'])} seeds: the k-th seed trains on "
            "set k mod replicates, so the sets would hold unequal numbers of seeds (and an interval over sets fewer "
            "degrees of freedom than it seems); use a number of seeds that is a multiple of it"
        )
    through_image = any(ARMS[arm].generated in IMAGE_SOURCES for arm in config["arms"])
    trains_its_own = not (config["diffusion"]["pretrained"] or config["diffusion"]["init_from"])
    if through_image and trains_its_own:
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


def _fill_defaults(values: dict, schema: dict) -> dict:
    """`values` with the `default` of every property of `schema` that it leaves out, all the way
    down (in place; entries of open mappings such as `resources` are left as they are)."""
    for key, subschema in schema.get("properties", {}).items():
        if key not in values and "default" in subschema:
            values[key] = copy.deepcopy(subschema["default"])
        if isinstance(values.get(key), dict):
            _fill_defaults(values[key], subschema)
    return values


def _section_schema(section: str) -> dict:
    """The schema of a config section, dotted (e.g. "diffusion.unet")."""
    schema = _schema(SCHEMA)
    for key in section.split("."):
        schema = schema["properties"][key]
    return schema


def with_defaults(section: str, values: dict) -> dict:
    """A copy of one config section (dotted, e.g. "diffusion.unet") with the schema's defaults for
    the keys it leaves out: what a step reads from the section that its rule's params carry."""
    return _fill_defaults(copy.deepcopy(values), _section_schema(section))


def _without_defaults(section: str, values: dict, keys: tuple[str, ...]) -> dict:
    """`values` without those of `keys` that hold the schema's default: keys added after results
    were made, left out of rule params at their defaults so that those results keep their params."""
    properties = _section_schema(section)["properties"]
    return {key: value for key, value in values.items() if key not in keys or value != properties[key]["default"]}


def sorted_keys(value):
    """`value` with every mapping's keys in sorted order, all the way down (lists keep theirs): the
    same settings then look the same to Snakemake, whatever order a config file wrote them in."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


def settings_of(cls, section: str, values: dict):
    """The settings dataclass `cls` of a config section: each field from `values`, or the schema's
    default where they leave it out; other keys of the section are not read."""
    filled = with_defaults(section, values)
    return cls(**{field.name: filled[field.name] for field in dataclasses.fields(cls)})


def features_params(features: dict) -> dict:
    """The features section as written, as rule params: `log` left out while false (its default), so
    the published features' params read as they did before the key existed and nothing reruns."""
    return _without_defaults("features", features, ("log",))


def pretrained_params(diffusion: dict) -> dict:
    """import_pretrained's params from the diffusion section as written: the pipeline to import
    (diffusion.pretrained or init_from) and its hub `revision` only where one is pinned, so that an
    import made before the key existed does not rerun."""
    pinned = {"revision": diffusion["revision"]} if diffusion.get("revision") else {}
    return {"source": diffusion["pretrained"] or diffusion.get("init_from")} | pinned


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
    chosen = {key: value for key, value in classifier.items() if key not in unused}
    return _without_defaults("classifier", chosen, ("model", "normalise", "epoch_choice", "train_on_validation"))


def split_params(protocol: dict) -> dict:
    """The protocol keys, as written, that make_split reads (a split's name carries its fold and N, so
    adding a fold or an N leaves existing splits alone); `short_classes` and `group_by_recording` only
    when they are not at their defaults."""
    params = {k: protocol[k] for k in ("kind", "seed", "test_fraction", "val_fraction")}
    newer = ("short_classes", "group_by_recording")
    written = {key: value for key, value in protocol.items() if key in newer}
    return params | _without_defaults("protocol", written, newer)


def planned_catalogue(dataset: dict, root: str | Path):
    """The dataset's catalogue (layouts.Catalogue) before anything is written: synthesized for the
    synthetic source, read (and checked) for the others; None when there is none yet (a download to come)."""
    from .layouts import URBANSOUND8K_METADATA, Catalogue, read_dataset, urbansound8k_catalogue
    from .synthetic import SyntheticSpec, synthesize_metadata

    if dataset["source"] == "synthetic":
        meta = synthesize_metadata(SyntheticSpec(**dataset["synthetic"])).astype(str)
        catalogue = urbansound8k_catalogue(meta, Path(root).resolve(), Path(root) / "metadata")
        return Catalogue(catalogue.clips, catalogue.classes)  # no files on disk yet
    if dataset["source"] == "urbansound8k" and not (Path(root) / URBANSOUND8K_METADATA).is_file():
        return None
    return read_dataset(dataset, root)


def plan_problems(config: dict, clips: pd.DataFrame) -> list[str]:
    """Settings that cannot work with this dataset, found from its catalogue's clips before any work:
    test folds without clips, low-data settings that a class cannot supply, splits without
    validation recordings, more pairs asked than exist."""
    from .arms import ARMS
    from .splits import LowDataError, make_split, split_names

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
    generating = any(ARMS[a].generated for a in config["arms"])
    per_class = config["generate"]["per_class"]
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
            problems += _pair_problems(name, train, split["judge_halves"], per_class)
    return problems


def _pair_problems(name: str, train: pd.DataFrame, halves: list[list[str]], per_class: int) -> list[str]:
    """Classes of a split that cannot give `per_class` pairs of clips from different recordings within
    a judge half (so that the other half's judge heard neither), or whose clips lie all in one half
    (so that one judge never heard the class)."""
    from .pairs import count_pairs

    problems = []
    half_of = {clip: half for half, clips in enumerate(halves) for clip in clips}
    for class_name, group in train.assign(half=train["id"].map(half_of)).groupby("class"):
        available = [count_pairs(group[group["half"] == half]) for half in (0, 1)]
        if group["half"].nunique() < 2:
            problems.append(
                f"arms: split {name}: class {class_name} has training clips of only one recording, so one judge of "
                "generated clips would never hear it; generating arms need two recordings per class"
            )
        elif sum(available) < per_class:
            problems.append(
                f"generate.per_class: {per_class} pairs asked, but split {name} has only {sum(available)} pairs of "
                f"{class_name} training clips from different recordings within a judge's half ({available[0]} and "
                f"{available[1]}: a pair's clips lie in one half, judged by a model trained on the other); lower it"
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


def cuda_available() -> bool:
    """Whether this machine shows an NVIDIA GPU, asked of `nvidia-smi` so that planning a run
    imports no torch; CUDA_VISIBLE_DEVICES set empty (or -1) hides them."""
    from .gpu_slots import listed_gpus

    if os.environ.get("CUDA_VISIBLE_DEVICES", "0").strip() in ("", "-1"):
        return False
    return bool(listed_gpus())


def will_use_cuda(setting: str, cuda_here: bool) -> bool:
    """Whether a job with this device setting computes on a GPU: `cuda`, or `auto` on a machine
    with CUDA. The workflow asks the scheduler for a GPU exactly then."""
    return setting == "cuda" or (setting == "auto" and cuda_here)


def device_problems(devices: dict[str, str], cuda_here: bool) -> list[str]:
    """`cuda` device settings (by config section) on a machine without CUDA."""
    return [
        f"{section}.device: 'cuda' but this machine has no CUDA device; use 'auto' or 'cpu'"
        for section, device in devices.items()
        if device == "cuda" and not cuda_here
    ]


def default_slurm_partition() -> str | None:
    """The partition SLURM uses when a job names none (`sinfo` marks it with *), if there is one."""
    try:
        listed = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    marked = [name for name in listed.stdout.split() if name.endswith("*")]
    return marked[0].rstrip("*") if listed.returncode == 0 and marked else None


def slurm_partition_problem(chosen: bool) -> tuple[str, bool]:
    """(message, fatal) for a SLURM run: which partition takes the jobs when none was chosen, or
    that the run cannot start because the cluster has no default one either."""
    if chosen:
        return "", False
    where = (
        "set slurm_partition under default-resources in workflow/profiles/slurm/config.yaml "
        "or pass --default-resources slurm_partition=<name>"
    )
    default = default_slurm_partition()
    if default is None:
        return f"no SLURM partition chosen and the cluster has no default partition: {where}", True
    return f"no SLURM partition chosen: the cluster's default partition {default} takes the jobs ({where})", False
