"""Rule params: each rule's params hold what it reads, as written, so that only a changed setting reruns it."""

import hashlib

import pytest
from helpers import SCHEMA, config_yaml, config_yaml_merged

from diffaug.params import (
    classifier_params,
    diffusion_params,
    features_params,
    generation_params,
    manifest_params,
    mel_params,
    pairs_params,
    prepare_params,
    pretrained_params,
    reconstruction_params,
    sampling_params,
    sorted_keys,
    split_params,
    written_config,
)
from diffaug.schema import validate_config


def test_sorted_keys_orders_every_mapping_and_keeps_lists():
    value = {"b": {"y": 1, "x": [{"d": 1, "c": 2}, 3]}, "a": None}
    ordered = sorted_keys(value)
    assert ordered == value and list(ordered) == ["a", "b"] and list(ordered["b"]) == ["x", "y"]
    assert list(ordered["b"]["x"][0]) == ["c", "d"] and ordered["b"]["x"][1] == 3


def test_the_written_config_holds_no_default_the_schema_fills_in():
    """A default added to the schema changes no params: they come from the config as written."""
    config = config_yaml()
    del config["classifier"]["model"]
    written = written_config(config, SCHEMA)
    validate_config(config, SCHEMA)
    assert "model" in config["classifier"] and "model" not in written["classifier"]
    assert list(written) == sorted(written) and list(written["classifier"]) == sorted(written["classifier"])


def test_params_leave_out_defaults_and_the_unused_network():
    """Rules see the published settings as before these options existed: nothing reruns."""
    config = config_yaml()
    before = {"widths", "hidden", "epochs", "batch_size", "learning_rate", "device", "precision"}
    assert set(classifier_params(config["classifier"])) == before
    assert "log" not in features_params(config["features"])
    assert features_params(config["features"] | {"log": True})["log"] is True
    sb = classifier_params(config["classifier"] | {"model": "sb_cnn", "normalise": "per_band"})
    assert sb["model"] == "sb_cnn" and sb["normalise"] == "per_band" and sb["sb_cnn"] == config["classifier"]["sb_cnn"]
    assert config["classifier"]["model"] == "published_cnn"  # left as it was


def test_the_import_carries_a_hub_revision_only_where_one_is_pinned():
    """An import made before diffusion.revision existed keeps its params; pinning one reruns it."""
    diffusion = config_yaml(diffusion__init_from="owner/pipeline")["diffusion"]
    validate_config(config_yaml(diffusion__revision="0123abc"), SCHEMA)
    assert pretrained_params(diffusion) == {"pipeline": "owner/pipeline"}
    assert pretrained_params(diffusion | {"revision": "v1"}) == {"pipeline": "owner/pipeline", "revision": "v1"}
    assert pretrained_params(diffusion | {"pretrained": "other/one"})["pipeline"] == "other/one"


def test_a_split_carries_newer_protocol_keys_only_away_from_their_defaults():
    protocol = {"kind": "kfold", "seed": 0, "test_fraction": 0.1, "val_fraction": 0.2, "test_folds": [1]}
    assert split_params(protocol) == {k: protocol[k] for k in ("kind", "seed", "test_fraction", "val_fraction")}
    assert split_params(protocol | {"short_classes": "keep_all"})["short_classes"] == "keep_all"


def test_generation_reads_neither_selection_nor_the_number_of_sets_and_reconstruction_no_mixing_weight():
    generate = config_yaml()["generate"] | {"filter": "confidence", "keep": 0.5, "sets": 2}
    generation = generation_params(generate)
    assert not {"filter", "keep", "sets"} & set(generation) and generation["alpha"] == generate["alpha"]
    assert reconstruction_params(generate) == {k: v for k, v in generation.items() if k != "alpha"}
    assert pairs_params(generate) == {"pairs_per_class": generate["pairs_per_class"], "seed": generate["seed"]}


def test_conditioning_keys_at_their_defaults_leave_the_params_as_before_them():
    diffusion, generate = config_yaml()["diffusion"], config_yaml()["generate"]
    written = {"conditioning": "none", "label_dropout": 0.3}
    assert diffusion_params(diffusion | written) == diffusion_params(diffusion) == diffusion  # nothing conditioned
    conditioned = diffusion_params(diffusion | {"conditioning": "class", "label_dropout": 0.3})
    assert conditioned["conditioning"] == "class" and conditioned["label_dropout"] == 0.3
    defaults = {"mode": "interpolate", "guidance_scale": 1.0}
    assert generation_params(generate | defaults) == generation_params(generate)
    guided = generate | {"mode": "sample", "guidance_scale": 2.0}
    assert generation_params(guided)["mode"] == "sample" and reconstruction_params(guided)["guidance_scale"] == 2.0
    assert "mode" not in reconstruction_params(guided)  # a reconstruction always inverts
    assert not {"alpha", "strength", "mode"} & set(sampling_params(guided)) and sampling_params(guided)["steps"]


def test_the_manifest_reads_a_layouts_own_keys_and_a_folder_trees_clip_list():
    dataset = {"layout": "folders", "on_bad_file": "skip", "max_seconds": 4.0, "metadata": None, "folds": 5}
    digest = hashlib.sha1(b"a/1.wav\nb/2.wav").hexdigest()
    assert manifest_params(dataset | {"esc10": True}, ["b/2.wav", "a/1.wav"]) == dataset | {"clips": digest}
    assert "clips" not in manifest_params(dataset | {"metadata": "meta.csv"}, ["a/1.wav"])
    assert manifest_params(dataset, None) == dataset  # nothing listed yet
    urbansound = {"layout": "urbansound8k", "on_bad_file": "stop", "max_seconds": 4.0, "metadata": None}
    assert list(manifest_params(urbansound, ["x"])) == ["layout", "on_bad_file", "max_seconds"]


@pytest.mark.parametrize("imported", [None, "pretrained", "init_from"])
def test_the_round_trip_reads_the_mel_image_only_of_a_pipeline_trained_here(imported):
    diffusion = config_yaml()["diffusion"] | ({imported: "owner/pipeline"} if imported else {})
    assert mel_params(diffusion) == (None if imported else diffusion["mel"])


def test_preparing_the_dataset_reads_where_it_comes_from():
    dataset = {"layout": "synthetic", "synthetic": {"seed": 0}, "max_seconds": 4.0}
    assert prepare_params(dataset) == {"layout": "synthetic", "root": None, "download": None, "synthetic": {"seed": 0}}


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


@pytest.mark.parametrize("given, as_in_a_file", COMMAND_LINE)
def test_command_line_text_reads_as_a_config_file_would_give_it(given, as_in_a_file):
    """The same setting, given on the command line or in a file, gives the same params (nothing reruns)."""
    from diffaug.plan import check_config

    written = written_config(config_yaml_merged(given), SCHEMA)
    assert written == written_config(config_yaml_merged(as_in_a_file), SCHEMA)
    assert repr(written) == repr(written_config(config_yaml_merged(as_in_a_file), SCHEMA))  # params compare by text
    check_config(config_yaml_merged(given), SCHEMA)
