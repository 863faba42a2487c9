import os
import re
import time
from pathlib import Path

import pytest
import yaml

from diffaug.config import MAX_VALUES, ConfigError, check_config, expanded_size, written_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def alias_bomb(levels: int) -> str:
    """YAML of a few hundred bytes whose aliases of aliases stand for about 9**levels values."""
    lines = ["lol:", "  l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"  l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 9) + "]" for k in range(1, levels)]
    return "\n".join(lines) + "\n"


def _config(**overrides):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for dotted, value in overrides.items():
        *parents, key = dotted.split("__")
        node = config
        for p in parents:
            node = node[p]
        node[key] = value
    return config


@pytest.mark.parametrize(
    "name", ["config.yaml", *(str(p.relative_to(ROOT)) for p in sorted(ROOT.glob("config/*.yaml")))]
)
def test_shipped_configs_are_valid(name):
    config = _config()
    for key, value in yaml.safe_load((ROOT / name).read_text()).items():
        config[key] = value
    check_config(config, SCHEMA)


@pytest.mark.parametrize("keep_new", [False, True])
def test_the_renamed_variants_key_names_its_new_name(keep_new):
    config = _config()
    config["variants"] = config["arms"] if keep_new else config.pop("arms")  # a file merged over config.yaml
    with pytest.raises(ConfigError) as error:
        check_config(config, SCHEMA)
    assert str(error.value) == (
        "invalid config:\n  variants: renamed to arms; rename the key (in the config file or in --config)"
    )


def test_unknown_key_is_named_with_the_allowed_ones():
    config = _config()
    config["classifier"]["learnig_rate"] = 0.1
    with pytest.raises(ConfigError, match=r"classifier: unknown key\(s\) learnig_rate; allowed: .*learning_rate"):
        check_config(config, SCHEMA)


def test_wrong_value_lists_the_choices():
    with pytest.raises(
        ConfigError, match=r"dataset\.source: 'urban' is not allowed; choose one of 'synthetic', 'urbansound8k'"
    ):
        check_config(_config(dataset__source="urban"), SCHEMA)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        check_config(_config(seeds=[], protocol__val_fraction=1.5), SCHEMA)
    assert "seeds:" in str(error.value) and "protocol.val_fraction:" in str(error.value)


def test_mel_windows_that_griffin_lim_cannot_invert_are_refused():
    config = _config()
    config["diffusion"]["mel"] |= {"n_fft": 1024, "hop_length": 690}
    with pytest.raises(ConfigError, match=r"diffusion\.mel: mel hop_length 690 must be at most half of n_fft 1024"):
        check_config(config, SCHEMA)


def test_baseline_is_required_among_arms():
    with pytest.raises(ConfigError, match="arms"):
        check_config(_config(arms=["diffusion"]), SCHEMA)


def _planned_clips(spec):
    """The catalogue's clips that planning checks a config against, for a synthetic dataset of `spec`."""
    import dataclasses

    from diffaug.config import planned_catalogue

    return planned_catalogue({"source": "synthetic", "synthetic": dataclasses.asdict(spec)}, "unwritten").clips


def test_impossible_combinations_are_found_from_the_metadata():
    from diffaug.config import plan_problems
    from diffaug.synthetic import SyntheticSpec

    config = _config(protocol__test_folds=[1, 9])
    metadata = _planned_clips(SyntheticSpec(recordings_per_class=4, clips_per_recording=2))
    assert plan_problems(config, metadata) == [
        "protocol.test_folds: fold 9 holds no clip of the dataset (its folds: 1, 2, 3, 4); remove it"
    ]
    config = _config(protocol__test_folds=[1], protocol__val_fraction=0.2)
    # 3 recordings per class outside fold 1, one of them for validation: the two left fall in different
    # judge halves, and no pair lies within one half
    problems = plan_problems(config, metadata)
    assert len(problems) == 10 and all("only 0 pairs" in p and p.startswith("generate.per_class") for p in problems)
    # 7 recordings of 2 clips outside fold 1, 2 for validation: 3 and 2 recordings in the halves give
    # 12 and 4 pairs of clips from different recordings within a half
    metadata = _planned_clips(SyntheticSpec(recordings_per_class=8, clips_per_recording=2))
    config["generate"]["per_class"] = 17
    problems = plan_problems(config, metadata)
    assert len(problems) == 10 and all("only 16 pairs" in p and p.startswith("generate.per_class") for p in problems)
    assert "within a judge's half (12 and 4:" in problems[0]
    config["generate"]["per_class"] = 16
    assert plan_problems(config, metadata) == []
    config["arms"] = ["baseline", "specaugment"]  # nothing generated: any count is fine
    config["generate"]["per_class"] = 1000
    assert plan_problems(config, metadata) == []


def test_a_low_data_setting_that_a_class_cannot_supply_is_a_config_problem():
    from diffaug.config import plan_problems
    from diffaug.synthetic import SyntheticSpec

    config = _config(protocol__test_folds=[1], protocol__train_per_class=[3, 9, 11, None], arms=["baseline"])
    metadata = _planned_clips(SyntheticSpec(recordings_per_class=6, clips_per_recording=2))
    # 5 recordings of 2 clips per class outside fold 1, each giving at most a quarter of N: 3 clips leave
    # two recordings for validation, 9 none, and 11 are more than the class has (what keep_all is for)
    problems = plan_problems(config, metadata)
    start = "protocol.train_per_class: split fold1-n{n}: class air_conditioner cannot supply {n} training clips, "
    numbers = "its 10 clips outside the test part come from 5 recording(s) of 2, 2, 2, 2, 2 clips"
    middle = "at most a quarter of them (rounded up) from one recording, plus one more recording for validation"
    assert problems == [
        start.format(n=9) + f"{middle}: {numbers}; lower train_per_class",
        start.format(n=11) + f"{middle}: {numbers}; lower "
        "train_per_class, or set protocol.short_classes: keep_all to train such a class on all it has",
    ]
    config["protocol"]["short_classes"] = "keep_all"
    assert [p.split(": class")[0] for p in plan_problems(config, metadata)] == [
        "protocol.train_per_class: split fold1-n9"
    ]
    assert "keep_all" not in plan_problems(config, metadata)[0]  # already set: no advice to set it


def test_a_class_without_validation_clips_is_refused_where_the_epoch_is_chosen_on_them():
    from diffaug.config import plan_problems
    from diffaug.synthetic import SyntheticSpec

    metadata = _planned_clips(SyntheticSpec(recordings_per_class=4, clips_per_recording=2))
    one_recording = metadata[~((metadata["class"] == "siren") & ~metadata["fold"].isin([1, 2]))]
    config = _config(protocol__test_folds=[1], protocol__val_fraction=0.2, arms=["baseline"])
    assert plan_problems(config, metadata) == []
    problems = plan_problems(config, one_recording)  # siren keeps one recording outside fold 1
    assert problems == [
        "protocol.val_fraction: split fold1 has no validation clip of siren (a class needs two training-side "
        "recordings to give one to validation); raise val_fraction, or set classifier.epoch_choice: last"
    ]
    config["classifier"]["epoch_choice"] = "last"
    assert plan_problems(config, one_recording) == []


def test_generated_clips_shorter_than_the_classifier_input_are_refused():
    config = _config(features__num_samples=88200)  # 4 s input; the demo's image makes 1 s clips
    with pytest.raises(ConfigError, match=r"generated clips last 1\.00 s .* classifier's 4\.00 s input"):
        check_config(config, SCHEMA)
    check_config(_config(features__num_samples=88200, arms=["baseline", "mel_average"]), SCHEMA)  # no image
    check_config(_config(features__num_samples=88200, diffusion__init_from="a/pipeline"), SCHEMA)  # checked later


def test_validation_clips_join_training_only_without_an_epoch_choice_on_them():
    with pytest.raises(ConfigError, match="classifier.train_on_validation: .* set classifier.epoch_choice: last"):
        check_config(_config(classifier__train_on_validation=True), SCHEMA)
    check_config(_config(classifier__train_on_validation=True, classifier__epoch_choice="last"), SCHEMA)


def test_the_planned_catalogue_comes_before_any_file_is_written(tmp_path, tiny_dataset):
    from diffaug.config import planned_catalogue

    synthetic = {"source": "synthetic", "synthetic": {"recordings_per_class": 2, "clips_per_recording": 3, "seed": 0}}
    planned = planned_catalogue(synthetic, tmp_path / "not yet")
    assert len(planned.clips) == 60 and len(planned.classes) == 10 and not (tmp_path / "not yet").exists()
    assert planned_catalogue({"source": "urbansound8k"}, tmp_path) is None  # a download to come
    assert len(planned_catalogue({"source": "urbansound8k"}, tiny_dataset[0]).clips) == len(tiny_dataset[1])


def test_pretrained_and_init_from_together_are_refused():
    config = _config(diffusion__pretrained="a/pipeline", diffusion__init_from="a/pipeline")
    with pytest.raises(ConfigError, match="pretrained and init_from are both set; choose one"):
        check_config(config, SCHEMA)


def _fake_sinfo(tmp_path, monkeypatch, partitions: str):
    (tmp_path / "sinfo").write_text(f"#!/bin/sh\nprintf '{partitions}'\n")
    (tmp_path / "sinfo").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")


def test_a_slurm_run_without_a_partition_says_which_takes_the_jobs_or_stops(tmp_path, monkeypatch):
    from diffaug.config import slurm_partition_problem

    assert slurm_partition_problem(chosen=True) == ("", False)
    _fake_sinfo(tmp_path, monkeypatch, "gpu\\nshort*\\nlong\\n")
    message, fatal = slurm_partition_problem(chosen=False)
    assert not fatal and "default partition short takes the jobs" in message and "slurm_partition" in message
    _fake_sinfo(tmp_path, monkeypatch, "gpu\\nlong\\n")
    message, fatal = slurm_partition_problem(chosen=False)
    assert fatal and "no default partition" in message and "workflow/profiles/slurm/config.yaml" in message


def test_sorted_keys_orders_every_mapping_and_keeps_lists():
    from diffaug.config import sorted_keys

    value = {"b": {"y": 1, "x": [{"d": 1, "c": 2}, 3]}, "a": None}
    ordered = sorted_keys(value)
    assert ordered == value and list(ordered) == ["a", "b"] and list(ordered["b"]) == ["x", "y"]
    assert list(ordered["b"]["x"][0]) == ["c", "d"] and ordered["b"]["x"][1] == 3


def test_classifier_and_feature_options_are_accepted():
    config = _config(classifier__model="sb_cnn", classifier__normalise="per_band", features__log=True)
    config["features"]["num_samples"] = 88200
    config["diffusion"]["mel"]["x_res"] = 128  # 4 s images for 4 s inputs
    config["classifier"]["sb_cnn"] = {"widths": [32, 64, 64, 64], "hidden": 128, "dropout": 0.3, "weight_decay": 0}
    check_config(config, SCHEMA)
    del config["classifier"]["sb_cnn"], config["classifier"]["model"], config["classifier"]["normalise"]
    del config["features"]["log"]  # all optional: configs written before them stay valid
    check_config(config, SCHEMA)


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
        ({"features__hop_length": 1, "features__num_samples": 10**7}, r"features: one clip would take 10000001 frames"),
    ],
)
def test_wrong_classifier_and_feature_options_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        check_config(_config(**override), SCHEMA)


def test_params_leave_out_defaults_and_the_unused_network():
    """Rules see the published settings as before these options existed: nothing reruns."""
    from diffaug.config import classifier_params, features_params

    config = _config()
    before = {"widths", "hidden", "epochs", "batch_size", "learning_rate", "device", "precision"}
    assert set(classifier_params(config["classifier"])) == before
    assert "log" not in features_params(config["features"])
    assert features_params(config["features"] | {"log": True})["log"] is True
    sb = classifier_params(config["classifier"] | {"model": "sb_cnn", "normalise": "per_band"})
    assert sb["model"] == "sb_cnn" and sb["normalise"] == "per_band" and sb["sb_cnn"] == config["classifier"]["sb_cnn"]
    assert config["classifier"]["model"] == "published_cnn"  # left as it was


def test_the_import_carries_a_hub_revision_only_where_one_is_pinned():
    """An import made before diffusion.revision existed keeps its params; pinning one reruns it."""
    from diffaug.config import pretrained_params

    diffusion = _config(diffusion__init_from="owner/pipeline")["diffusion"]
    check_config(_config(diffusion__revision="0123abc"), SCHEMA)
    assert pretrained_params(diffusion) == {"source": "owner/pipeline"}
    assert pretrained_params(diffusion | {"revision": "v1"}) == {"source": "owner/pipeline", "revision": "v1"}
    assert pretrained_params(diffusion | {"pretrained": "other/one"})["source"] == "other/one"


@pytest.mark.parametrize(("replicates", "seeds", "refused"), [(4, 3, True), (2, 3, True), (3, 3, False), (2, 4, False)])
def test_seeds_must_fill_every_generated_set_alike(replicates, seeds, refused):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["generate"]["replicates"], config["seeds"] = replicates, list(range(seeds))
    message = f"  generate.replicates: {replicates} generated sets for {seeds} seeds"
    if refused:  # when the config is read, before any dataset is there
        with pytest.raises(ConfigError, match=re.escape(message)):
            check_config(config)
    else:
        check_config(config)


def test_every_rule_with_resources_can_be_given_them_in_the_config():
    import re

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
    config = _config()
    config["resources"] = yaml.safe_load(alias_bomb(9))  # 490 million values, unwalkable
    refusal = f"config: expands to more than {MAX_VALUES} values (YAML aliases?), 490329056 of them under resources"
    started = time.perf_counter()
    for check in (written_config, check_config):
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
    config = _config() | yaml.safe_load(text)
    with pytest.raises(ConfigError, match=re.escape(problem)):
        written_config(config, SCHEMA)


def test_the_shipped_configs_are_far_below_the_size_bound():
    for path in [ROOT / "config.yaml", *sorted(ROOT.glob("config/*.yaml"))]:
        config = _config() | yaml.safe_load(path.read_text())
        assert expanded_size(check_config(config, SCHEMA)) < MAX_VALUES / 20, path


COMMAND_LINE = [  # what `--config 'section={key: value}'` hands over: every nested value as text
    ({"dataset": {"download": "false"}}, {"dataset": {"download": False}}),
    ({"generate": {"quantize": "TRUE"}}, {"generate": {"quantize": True}}),
    (
        {"classifier": {"train_on_validation": "True", "epoch_choice": "last", "epochs": "3", "learning_rate": "1e-3"}},
        {"classifier": {"train_on_validation": True, "epoch_choice": "last", "epochs": 3, "learning_rate": 0.001}},
    ),
    ({"seeds": ["1", "2", "3"], "generate": {"keep": "1"}}, {"seeds": [1, 2, 3], "generate": {"keep": 1}}),
    ({"protocol": {"train_per_class": ["null", "50"]}}, {"protocol": {"train_per_class": [None, 50]}}),
    (
        {"diffusion": {"pretrained": "null", "ema_decay": "0.999"}},
        {"diffusion": {"pretrained": None, "ema_decay": 0.999}},
    ),
]


def _merged(sections: dict) -> dict:
    from snakemake.utils import update_config

    config = _config()
    update_config(config, sections)
    return config


@pytest.mark.parametrize("given, as_in_a_file", COMMAND_LINE)
def test_command_line_text_reads_as_a_config_file_would_give_it(given, as_in_a_file):
    """The same setting, given on the command line or in a file, gives the same params (nothing reruns)."""
    written = written_config(_merged(given), SCHEMA)
    assert written == written_config(_merged(as_in_a_file), SCHEMA)
    assert repr(written) == repr(written_config(_merged(as_in_a_file), SCHEMA))  # params compare by text
    check_config(_merged(given), SCHEMA)


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
    config = _merged(given)
    if message is None:
        assert check_config(config, SCHEMA)["results"] == "1"
        return
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_config(config, SCHEMA)
