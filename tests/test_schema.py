"""The config schema: what it refuses (naming the key), the size bound, command-line text, its defaults."""

import re
import time

import pytest
import yaml
from helpers import ROOT, SCHEMA, alias_bomb, config_yaml, config_yaml_merged

from diffaug.schema import (
    MAX_VALUES,
    ConfigError,
    coerced_config,
    expanded_size,
    settings_of,
    validate_config,
    with_defaults,
)


@pytest.mark.parametrize("keep_new", [False, True])
def test_the_renamed_variants_key_names_its_new_name(keep_new):
    config = config_yaml()
    config["variants"] = config["arms"] if keep_new else config.pop("arms")  # a file merged over config.yaml
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    assert str(error.value) == (
        "invalid config:\n  variants: renamed to arms; rename the key (in the config file or in --config)"
    )


@pytest.mark.parametrize("keep_new", [False, True])
@pytest.mark.parametrize(
    ("section", "old", "new"),
    [("generate", "replicates", "sets"), ("generate", "per_class", "pairs_per_class"), ("dataset", "source", "layout")],
)
def test_a_renamed_nested_key_names_its_new_name(section, old, new, keep_new):
    config = config_yaml()
    config[section][old] = config[section][new] if keep_new else config[section].pop(new)
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    assert str(error.value) == (
        f"invalid config:\n  {section}.{old}: renamed to {section}.{new}; "
        "rename the key (in the config file or in --config)"
    )


def test_unknown_key_is_named_with_the_allowed_ones():
    config = config_yaml()
    config["classifier"]["learnig_rate"] = 0.1
    with pytest.raises(ConfigError, match=r"classifier: unknown key\(s\) learnig_rate; allowed: .*learning_rate"):
        validate_config(config, SCHEMA)


def test_wrong_value_lists_the_choices():
    with pytest.raises(
        ConfigError, match=r"dataset\.layout: 'urban' is not allowed; choose one of 'synthetic', 'urbansound8k'"
    ):
        validate_config(config_yaml(dataset__layout="urban"), SCHEMA)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        validate_config(config_yaml(seeds=[], protocol__val_fraction=1.5), SCHEMA)
    assert "seeds:" in str(error.value) and "protocol.val_fraction:" in str(error.value)


def test_baseline_is_required_among_arms():
    with pytest.raises(ConfigError, match="arms"):
        validate_config(config_yaml(arms=["diffusion"]), SCHEMA)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"classifier__model": "resnet"}, r"classifier\.model: 'resnet' is not allowed; choose one of 'published_cnn'"),
        ({"classifier__normalise": "global"}, r"classifier\.normalise: 'global' is not allowed"),
        ({"classifier__sb_cnn": {"dropout": 1.0}}, r"classifier\.sb_cnn\.dropout"),
        ({"classifier__sb_cnn": {"widht": [8]}}, r"classifier\.sb_cnn: unknown key\(s\) widht"),
        ({"features__log": "yes"}, r"features\.log"),
        ({"diffusion__revision": 3}, r"diffusion\.revision: 3 is not of type 'string', 'null'"),
        ({"classifier__learning_rate": float("nan")}, r"classifier\.learning_rate: nan is not a finite number"),
        ({"dataset__max_seconds": float("inf")}, r"dataset\.max_seconds: inf is not a finite number"),
        ({"features__n_mels": 64.0}, r"features\.n_mels: 64\.0 is not a whole number; write 64"),
    ],
)
def test_wrong_classifier_and_feature_options_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(config_yaml(**override), SCHEMA)


def test_the_schemas_defaults_fill_what_a_config_leaves_out():
    config = config_yaml()
    del config["classifier"]["model"], config["classifier"]["normalise"]
    filled = validate_config(config, SCHEMA)
    assert filled is config and config["classifier"]["model"] == "published_cnn"
    assert config["classifier"]["normalise"] == "none"
    assert with_defaults("classifier", {"epochs": 3}) == with_defaults("classifier", {}) | {"epochs": 3}


def test_a_settings_dataclass_reads_its_fields_and_nothing_else_of_a_section():
    from dataclasses import dataclass

    @dataclass
    class Epochs:
        epochs: int
        model: str

    assert settings_of(Epochs, "classifier", {"epochs": 3, "unread": 1}) == Epochs(3, "published_cnn")


def test_every_rule_with_resources_can_be_given_them_in_the_config():
    rules = set()
    for path in (ROOT / "workflow" / "rules").glob("*.smk"):
        rules |= set(re.findall(r'resources_for\(\s*"(\w+)"', path.read_text()))
    allowed = yaml.safe_load(SCHEMA.read_text())["properties"]["resources"]["propertyNames"]["enum"]
    assert rules and rules == set(allowed)


def test_the_size_of_a_config_is_counted_with_its_aliases_written_out_but_walked_once():
    started = time.perf_counter()
    size = expanded_size(yaml.safe_load(alias_bomb(9)))
    values_at = [10]  # l0: the list and its 9 scalars; each next level, a list of 9 of the one before
    for _ in range(8):
        values_at.append(1 + 9 * values_at[-1])
    assert size == 1 + 1 + sum(values_at) and size > 400_000_000  # {lol: {l0: ..., l8: ...}}
    assert time.perf_counter() - started < 1
    assert expanded_size({"a": [1, {"b": None}], "c": "x"}) == 6


def test_a_yaml_alias_bomb_is_refused_before_anything_walks_it():
    from diffaug.params import written_config
    from diffaug.plan import check_config

    config = config_yaml()
    config["resources"] = yaml.safe_load(alias_bomb(9))  # 490 million values, unwalkable
    refusal = f"config: expands to more than {MAX_VALUES} values (YAML aliases?), 490329056 of them under resources"
    started = time.perf_counter()
    for check in (coerced_config, validate_config, written_config, check_config):
        with pytest.raises(ConfigError, match=re.escape(refusal)):
            check(config, SCHEMA)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "text, problem",
    [
        ("seeds: &s [1, *s]", "config: holds itself (a YAML alias inside its own anchor)"),
        ("seeds: " + "[" * 30 + "]" * 30, "config: nests deeper than 20 levels"),
    ],
)
def test_a_config_that_holds_itself_or_nests_too_deep_is_refused(text, problem):
    config = config_yaml() | yaml.safe_load(text)
    with pytest.raises(ConfigError, match=re.escape(problem)):
        coerced_config(config, SCHEMA)


def test_the_shipped_configs_are_far_below_the_size_bound():
    for path in [ROOT / "config.yaml", *sorted(ROOT.glob("config/*.yaml"))]:
        config = config_yaml() | yaml.safe_load(path.read_text())
        assert expanded_size(validate_config(config, SCHEMA)) < MAX_VALUES / 20, path


@pytest.mark.parametrize(
    "given, message",
    [
        ({"generate": {"quantize": "maybe"}}, "generate.quantize: 'maybe' is not a boolean; write true or false"),
        ({"features": {"log": "yes"}}, "features.log: 'yes' is not a boolean; write true or false"),
        ({"classifier": {"epochs": "3.5"}}, "classifier.epochs: '3.5' is not a whole number; write a whole number"),
        ({"generate": {"keep": "all"}}, "generate.keep: 'all' is not a number; write a number such as 0.5 or 1e-3"),
        ({"diffusion": {"ema_decay": "nan"}}, "diffusion.ema_decay: 'nan' is not a number or null; write a number"),
        ({"results": "1"}, None),  # text where text is asked stays text
    ],
)
def test_command_line_text_that_spells_no_value_of_its_kind_is_refused_saying_how_to_write_it(given, message):
    config = config_yaml_merged(given)
    if message is None:
        assert validate_config(config, SCHEMA)["results"] == "1"
        return
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(config, SCHEMA)
