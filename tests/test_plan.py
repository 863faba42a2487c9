"""Checks before any job: settings that cannot work together, a dataset that cannot supply the plan,
devices that the machine cannot give."""

import dataclasses
import re

import pytest
import yaml
from helpers import ROOT, SCHEMA, config_yaml

from diffaug import probes
from diffaug.layouts import DatasetError
from diffaug.plan import (
    check_config,
    data_root,
    device_problems,
    machine_fit,
    plan_problems,
    planned_catalogue,
    require_dataset,
    require_fit,
    settled_config,
)
from diffaug.schema import ConfigError
from diffaug.synthetic import SyntheticSpec


@pytest.mark.parametrize(
    "name", ["config.yaml", *(str(p.relative_to(ROOT)) for p in sorted(ROOT.glob("config/*.yaml")))]
)
def test_shipped_configs_are_valid(name):
    config = config_yaml()
    for key, value in yaml.safe_load((ROOT / name).read_text()).items():
        config[key] = value
    check_config(config, SCHEMA)


def test_mel_windows_that_griffin_lim_cannot_invert_are_refused():
    config = config_yaml()
    config["diffusion"]["mel"] |= {"n_fft": 1024, "hop_length": 690}
    with pytest.raises(ConfigError, match=r"diffusion\.mel: mel hop_length 690 must be at most half of n_fft 1024"):
        check_config(config, SCHEMA)


def test_schema_problems_are_reported_before_settings_that_do_not_work_together():
    config = config_yaml(classifier__epochs=0, diffusion__pretrained="a/pipeline", diffusion__init_from="a/pipeline")
    with pytest.raises(ConfigError, match="classifier.epochs") as error:
        check_config(config, SCHEMA)
    assert "init_from" not in str(error.value)


def test_a_checked_config_is_sorted_in_place_and_its_written_form_returned():
    config = config_yaml()
    del config["classifier"]["model"]
    written = settled_config(config, SCHEMA)
    assert config["classifier"]["model"] == "published_cnn" and "model" not in written["classifier"]
    assert list(config) == sorted(config) and list(config["classifier"]) == sorted(config["classifier"])


def _planned_clips(spec):
    """The catalogue's clips that planning checks a config against, for a synthetic dataset of `spec`."""
    return planned_catalogue({"layout": "synthetic", "synthetic": dataclasses.asdict(spec)}, "unwritten").clips


def test_impossible_combinations_are_found_from_the_metadata():
    config = config_yaml(protocol__test_folds=[1, 9])
    metadata = _planned_clips(SyntheticSpec(recordings_per_class=4, clips_per_recording=2))
    assert plan_problems(config, metadata) == [
        "protocol.test_folds: fold 9 holds no clip of the dataset (its folds: 1, 2, 3, 4); remove it"
    ]
    config = config_yaml(protocol__test_folds=[1], protocol__val_fraction=0.2)
    # 3 recordings per class outside fold 1, one of them for validation: the two left fall in different
    # judge halves, and no pair lies within one half
    problems = plan_problems(config, metadata)
    assert len(problems) == 10 and all(
        "only 0 pairs" in p and p.startswith("generate.pairs_per_class") for p in problems
    )
    # 7 recordings of 2 clips outside fold 1, 2 for validation: 3 and 2 recordings in the halves give
    # 12 and 4 pairs of clips from different recordings within a half
    metadata = _planned_clips(SyntheticSpec(recordings_per_class=8, clips_per_recording=2))
    config["generate"]["pairs_per_class"] = 17
    problems = plan_problems(config, metadata)
    assert len(problems) == 10 and all(
        "only 16 pairs" in p and p.startswith("generate.pairs_per_class") for p in problems
    )
    assert "within a judge's half (12 and 4:" in problems[0]
    config["generate"]["pairs_per_class"] = 16
    assert plan_problems(config, metadata) == []
    config["arms"] = ["baseline", "specaugment"]  # nothing generated: any count is fine
    config["generate"]["pairs_per_class"] = 1000
    assert plan_problems(config, metadata) == []


def test_a_low_data_setting_that_a_class_cannot_supply_is_a_config_problem():
    config = config_yaml(protocol__test_folds=[1], protocol__train_per_class=[3, 9, 11, None], arms=["baseline"])
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
    metadata = _planned_clips(SyntheticSpec(recordings_per_class=4, clips_per_recording=2))
    one_recording = metadata[~((metadata["class"] == "siren") & ~metadata["fold"].isin([1, 2]))]
    config = config_yaml(protocol__test_folds=[1], protocol__val_fraction=0.2, arms=["baseline"])
    assert plan_problems(config, metadata) == []
    problems = plan_problems(config, one_recording)  # siren keeps one recording outside fold 1
    assert problems == [
        "protocol.val_fraction: split fold1 has no validation clip of siren (a class needs two training-side "
        "recordings to give one to validation); raise val_fraction, or set classifier.epoch_choice: last"
    ]
    config["classifier"]["epoch_choice"] = "last"
    assert plan_problems(config, one_recording) == []


def test_a_plan_the_dataset_cannot_supply_stops_naming_every_problem():
    catalogue = planned_catalogue({"layout": "synthetic", "synthetic": {"recordings_per_class": 4}}, "unwritten")
    require_fit(config_yaml(protocol__test_folds=[1]), None)  # a download to come: checked later
    with pytest.raises(ConfigError) as error:
        require_fit(config_yaml(protocol__test_folds=[1, 9]), catalogue)
    assert str(error.value) == (
        "config does not fit the dataset:\n"
        "  protocol.test_folds: fold 9 holds no clip of the dataset (its folds: 1, 2, 3, 4); remove it"
    )


def test_generated_clips_shorter_than_the_classifier_input_are_refused():
    config = config_yaml(features__num_samples=88200)  # 4 s input; the demo's image makes 1 s clips
    with pytest.raises(ConfigError, match=r"generated clips last 1\.00 s .* classifier's 4\.00 s input"):
        check_config(config, SCHEMA)
    check_config(config_yaml(features__num_samples=88200, arms=["baseline", "mel_average"]), SCHEMA)  # no image
    check_config(config_yaml(features__num_samples=88200, diffusion__init_from="a/pipeline"), SCHEMA)  # checked later


def test_feature_settings_too_large_for_one_clip_are_refused():
    with pytest.raises(ConfigError, match=r"features: one clip would take 10000001 frames"):
        check_config(config_yaml(features__hop_length=1, features__num_samples=10**7), SCHEMA)


def test_validation_clips_join_training_only_without_an_epoch_choice_on_them():
    with pytest.raises(ConfigError, match="classifier.train_on_validation: .* set classifier.epoch_choice: last"):
        check_config(config_yaml(classifier__train_on_validation=True), SCHEMA)
    check_config(config_yaml(classifier__train_on_validation=True, classifier__epoch_choice="last"), SCHEMA)


def test_the_planned_catalogue_comes_before_any_file_is_written(tmp_path, tiny_dataset):
    synthetic = {"layout": "synthetic", "synthetic": {"recordings_per_class": 2, "clips_per_recording": 3, "seed": 0}}
    planned = planned_catalogue(synthetic, tmp_path / "not yet")
    assert len(planned.clips) == 60 and len(planned.classes) == 10 and not (tmp_path / "not yet").exists()
    assert planned_catalogue({"layout": "urbansound8k"}, tmp_path) is None  # a download to come
    assert len(planned_catalogue({"layout": "urbansound8k"}, tiny_dataset[0]).clips) == len(tiny_dataset[1])


def test_the_dataset_is_looked_for_where_the_config_points(tmp_path):
    assert data_root({"results": "out", "dataset": {"layout": "synthetic", "root": "ignored"}}) == "out/data/synthetic"
    assert data_root({"results": "out", "dataset": {"layout": "esc50", "root": "/data/esc50"}}) == "/data/esc50"
    with pytest.raises(ConfigError, match="dataset.root: required when dataset.layout is folders"):
        data_root({"results": "out", "dataset": {"layout": "folders", "root": None}})
    missing = str(tmp_path / "meta.csv")
    require_dataset({"layout": "urbansound8k", "download": True}, missing)  # the download brings it
    with pytest.raises(DatasetError, match="point dataset.root at an extracted UrbanSound8K, or set dataset.down"):
        require_dataset({"layout": "urbansound8k", "download": False}, missing)
    with pytest.raises(DatasetError, match=re.escape(f"{missing} not found: point dataset.root (and dataset.meta")):
        require_dataset({"layout": "folders", "download": False}, missing)
    require_dataset({"layout": "folders", "download": False}, str(tmp_path))


def test_pretrained_and_init_from_together_are_refused():
    config = config_yaml(diffusion__pretrained="a/pipeline", diffusion__init_from="a/pipeline")
    with pytest.raises(ConfigError, match="pretrained and init_from are both set; choose one"):
        check_config(config, SCHEMA)


def test_guidance_and_sampling_need_a_class_conditional_model():
    for setting, named in (
        ({"generate__guidance_scale": 2.0}, "generate.guidance_scale 2.0"),
        ({"generate__mode": "sample"}, "generate.mode sample"),
        ({"arms": ["baseline", "diffusion_sample"]}, "the diffusion_sample arm"),
    ):
        with pytest.raises(ConfigError, match=f"{named}: needs a class-conditional model; set diffusion.conditioning"):
            check_config(config_yaml(**setting), SCHEMA)
        check_config(config_yaml(diffusion__conditioning="class", **setting), SCHEMA)
    unguidable = config_yaml(diffusion__conditioning="class", diffusion__label_dropout=0, generate__guidance_scale=2)
    with pytest.raises(ConfigError, match="guidance needs the model's prediction without a class"):
        check_config(unguidable, SCHEMA)
    with pytest.raises(ConfigError, match="conditioning: class trains a class embedding, but diffusion.pretrained"):
        check_config(config_yaml(diffusion__conditioning="class", diffusion__pretrained="a/pipeline"), SCHEMA)


def test_classifier_and_feature_options_are_accepted():
    config = config_yaml(classifier__model="sb_cnn", classifier__normalise="per_band", features__log=True)
    config["features"]["num_samples"] = 88200
    config["diffusion"]["mel"]["x_res"] = 128  # 4 s images for 4 s inputs
    config["classifier"]["sb_cnn"] = {"widths": [32, 64, 64, 64], "hidden": 128, "dropout": 0.3, "weight_decay": 0}
    check_config(config, SCHEMA)
    del config["classifier"]["sb_cnn"], config["classifier"]["model"], config["classifier"]["normalise"]
    del config["features"]["log"]  # all optional: configs written before them stay valid
    check_config(config, SCHEMA)


@pytest.mark.parametrize(("sets", "seeds", "refused"), [(4, 3, True), (2, 3, True), (3, 3, False), (2, 4, False)])
def test_seeds_must_fill_every_generated_set_alike(sets, seeds, refused):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["generate"]["sets"], config["seeds"] = sets, list(range(seeds))
    message = f"  generate.sets: {sets} generated sets for {seeds} seeds"
    if refused:  # when the config is read, before any dataset is there
        with pytest.raises(ConfigError, match=re.escape(message)):
            check_config(config)
    else:
        check_config(config)


DEVICES = {"diffusion": "cuda", "generate": "auto", "classifier": "cuda"}


def test_cuda_settings_on_a_machine_without_cuda_are_named():
    assert device_problems(DEVICES, cuda_here=True) == []
    assert device_problems(DEVICES, cuda_here=False) == [
        "diffusion.device: 'cuda' but this machine has no CUDA device; use 'auto' or 'cpu'",
        "classifier.device: 'cuda' but this machine has no CUDA device; use 'auto' or 'cpu'",
    ]


@pytest.mark.parametrize("cuda_here", [False, True])
def test_auto_devices_get_a_gpu_where_the_machine_or_cluster_has_one(monkeypatch, cuda_here):
    monkeypatch.setattr(probes, "cuda_available", lambda: cuda_here)
    auto = dict.fromkeys(DEVICES, "auto")
    assert machine_fit(auto, local=True, planning=True, dry_run=False) == (cuda_here, "", False)
    assert machine_fit(auto, local=False, planning=True, dry_run=False).gpu  # the scheduler gives one
    assert not machine_fit(auto, local=True, planning=False, dry_run=False).gpu  # a job's own process
    assert not machine_fit(dict.fromkeys(DEVICES, "cpu"), local=True, planning=True, dry_run=False).gpu


def test_cuda_settings_without_cuda_stop_a_run_and_are_planned_as_on_a_gpu_machine_in_a_dry_run(monkeypatch):
    monkeypatch.setattr(probes, "cuda_available", lambda: False)
    refused = machine_fit(DEVICES, local=True, planning=True, dry_run=False)
    assert refused.fatal and not refused.gpu
    assert refused.message == (
        "config does not fit this machine:\n"
        "  diffusion.device: 'cuda' but this machine has no CUDA device; use 'auto' or 'cpu'\n"
        "  classifier.device: 'cuda' but this machine has no CUDA device; use 'auto' or 'cpu'"
    )
    planned = machine_fit(DEVICES, local=True, planning=True, dry_run=True)
    assert planned.gpu and not planned.fatal
    assert planned.message.startswith("warning: config does not fit this machine (a real run here is refused):\n")
    assert planned.message.endswith("\n  this dry run plans the jobs as on a machine with CUDA")
