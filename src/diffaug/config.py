"""Config checking against the workflow's JSON schema, with messages that name the key."""

from __future__ import annotations

from pathlib import Path

import jsonschema
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
    """Raise ConfigError listing every schema violation as `key: problem`; return the config."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"  {_where(e)}: {_describe(e)}" for e in errors]
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    return config
