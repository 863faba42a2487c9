"""The config schema: load it, check a config against it with messages that name the key, fill its defaults."""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import jsonschema
import yaml

SCHEMA = files(__package__) / "config.schema.yaml"
"""The config schema: what each key may hold and, for keys a config may leave out, their defaults.
It ships inside the package so that an installed diffaug checks configs without a checkout;
workflow/schemas/config.schema.yaml, which the Snakefile reads, is a link to it."""


class ConfigError(ValueError):
    """A config that cannot be used; the message lists every problem by key."""


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


RENAMED_KEYS = {
    "variants": "arms",
    "generate.replicates": "generate.sets",
    "generate.per_class": "generate.pairs_per_class",
    "dataset.source": "dataset.layout",
}
"""Config keys that were renamed (dotted where nested), old name to new: a config that still uses an
old name is stopped with the new one rather than having its setting ignored."""


def holds_key(config: dict, dotted: str) -> bool:
    """Whether `config` holds the dotted key (e.g. generate.sets), its sections being mappings."""
    *sections, key = dotted.split(".")
    for section in sections:
        config = config.get(section)
        if not isinstance(config, dict):
            return False
    return key in config


def validate_config(config: dict, schema_path: str | Path | Traversable = SCHEMA) -> dict:
    """Raise ConfigError for a config too large to walk (refuse_oversized) or naming any renamed key
    still in use; else listing every schema violation as `key: problem`. Return the config with
    command-line text coerced (coerce_text) and the schema's defaults filled in (in place)."""
    coerced_config(config, schema_path)
    schema = _schema(schema_path)
    renamed = [
        f"  {old}: renamed to {new}; rename the key (in the config file or in --config)"
        for old, new in RENAMED_KEYS.items()
        if holds_key(config, old)
    ]
    if renamed:
        raise ConfigError("invalid config:\n" + "\n".join(renamed))
    validator = StrictValidator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    lines = [f"  {schema_key(e)}: {schema_problem(e)}" for e in errors]
    if lines:
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    return _fill_defaults(config, schema)


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


def coerced_config(config: dict, schema_path: str | Path | Traversable = SCHEMA) -> dict:
    """`config` refused if too large to walk (refuse_oversized), its command-line text coerced (coerce_text,
    in place; returned), so that `--config` gives the same values as a config file."""
    refuse_oversized(config)
    return coerce_text(config, _schema(schema_path))


def _fill_defaults(values: dict, schema: dict) -> dict:
    """`values` with the `default` of every property of `schema` that it leaves out, all the way
    down (in place; entries of open mappings such as `resources` are left as they are)."""
    for key, subschema in schema.get("properties", {}).items():
        if key not in values and "default" in subschema:
            values[key] = copy.deepcopy(subschema["default"])
        if isinstance(values.get(key), dict):
            _fill_defaults(values[key], subschema)
    return values


def section_schema(section: str) -> dict:
    """The schema of a config section, dotted (e.g. "diffusion.unet")."""
    schema = _schema(SCHEMA)
    for key in section.split("."):
        schema = schema["properties"][key]
    return schema


def with_defaults(section: str, values: dict) -> dict:
    """A copy of one config section (dotted, e.g. "diffusion.unet") with the schema's defaults for
    the keys it leaves out: what a step reads from the section that its rule's params carry."""
    return _fill_defaults(copy.deepcopy(values), section_schema(section))


def settings_of(cls, section: str, values: dict):
    """The settings dataclass `cls` of a config section: each field from `values`, or the schema's
    default where they leave it out; other keys of the section are not read."""
    filled = with_defaults(section, values)
    return cls(**{field.name: filled[field.name] for field in dataclasses.fields(cls)})


MAX_CLIP_VALUES = 2**28
"""Most values (1 GiB in float32) in the largest tensor that making one clip's features builds: its STFT
frames (n_fft x frames) or its mel spectrogram (n_mels x frames)."""


def input_frames(features: dict) -> int:
    """The frames of a classifier input: num_samples at hop_length, centred (one frame more)."""
    return 1 + features["num_samples"] // features["hop_length"]


def feature_size_problem(features: dict) -> str | None:
    """Why feature settings, each within its bounds, would still make clips too large, if they would."""
    frames = input_frames(features)
    per_frame = max(features["n_fft"], features["n_mels"])
    if per_frame * frames <= MAX_CLIP_VALUES:
        return None
    return (
        f"features: one clip would take {frames} frames (num_samples / hop_length) of {per_frame} values "
        f"(n_fft or n_mels), over the {MAX_CLIP_VALUES} values that making one clip's features may take"
    )
