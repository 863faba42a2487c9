"""benchmarks/study_cost.py's projection follows a dataset's classes, clip length and size."""

import importlib
import sys

import pandas as pd
import pytest
from helpers import ROOT

UNITS = dict.fromkeys(
    [
        "manifest_seconds_per_clip",
        "features_seconds_per_clip",
        "diffusion_step_seconds",
        "round_trip_seconds_per_clip",
        "unet_pass_seconds_per_sample",
        "image_to_audio_seconds_per_clip",
        "train_seconds_per_clip",
        "predict_seconds_per_clip",
    ],
    1.0,
) | {"mel_image_seconds_per_clip": 3.0, "mel_image_seconds_per_slice": 1.0, "job_start_seconds": 0.0}
"""Made-up units; no job start, so that a stage's cost is its clips' alone."""
ON_GPU = {"diffusion": True, "generate": True, "classifier": True}


@pytest.fixture(scope="module")
def study_cost():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # the script imports its folder's generation benchmark
    try:
        yield importlib.import_module("study_cost")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def config(study_cost):
    return study_cost.merged_config([str(ROOT / "config" / "urbansound8k.yaml")])


def test_the_defaults_are_urbansound8k_and_leave_the_units_as_measured(study_cost, config):
    counts = study_cost.dataset_counts(None)
    assert counts == study_cost.URBANSOUND8K and sum(counts["fold_clips"].values()) == 8732
    assert study_cost.clip_units(config, counts, UNITS, None) == UNITS


def test_generated_clips_follow_the_classes(study_cost, config):
    """Twice the classes and clips (the same clips per class to pair): twice every generating stage."""
    ten, twenty = (
        study_cost.project(config, study_cost.dataset_counts(None, 400 * n, 10, n), UNITS, ON_GPU, 16)["stage_minutes"]
        for n in (10, 20)
    )
    for stage in ("interpolate", "reconstruct", "features_round_trip", "score_generated"):
        assert twenty[stage] == pytest.approx(2 * ten[stage], rel=1e-3), stage
    assert twenty["train_diffusion"] > ten["train_diffusion"]  # twice the training clips, the same steps


def test_guided_decoding_and_sampling_are_priced_by_their_passes(study_cost, config):
    """Guidance doubles a decoding pass (measured apart); sampling decodes every clip through the whole
    schedule and inverts nothing."""
    counts = study_cost.dataset_counts(None, 4000, 10, 10)
    generate = config["generate"]
    arms = {"arms": ["baseline", "diffusion", "diffusion_sample"]}
    guided = UNITS | {"decoding_pass_seconds_per_sample": 2.0}
    plain, doubled = (
        study_cost.project(config | arms, counts, units, ON_GPU, 16)["stage_minutes"] for units in (UNITS, guided)
    )
    splits = len(study_cost.split_names(config["protocol"]))
    clips = splits * 10 * generate["pairs_per_class"]  # ten classes
    audio = clips * UNITS["image_to_audio_seconds_per_clip"]
    assert plain["sample"] == pytest.approx((clips * generate["steps"] + audio) / 60, rel=1e-3)
    assert doubled["sample"] == pytest.approx((2 * clips * generate["steps"] + audio) / 60, rel=1e-3)
    decoding = clips * study_cost.walked_steps(generate)
    assert doubled["interpolate"] - plain["interpolate"] == pytest.approx(decoding / 60, rel=1e-3)  # inversion alike
    assert study_cost.GPU_STAGES["sample"] == "generate"


def test_few_clips_per_class_are_inverted_once_however_many_pairs_they_start(study_cost):
    assert study_cost.drawn_sources(100, 28, 1.0, 0) == (28, 28)  # ESC-50's training clips of a class: 378 pairs
    inverted, firsts = study_cost.drawn_sources(100, 700, 8732 / 1297, 0)  # UrbanSound8K's
    assert 150 < inverted < 200 and 98 <= firsts <= 100


def test_reading_follows_the_clip_length_and_mel_images_their_slices(study_cost, config):
    config = config | {"diffusion": config["diffusion"] | {"max_slices": 4}}  # 5.9 s slices
    counts = study_cost.dataset_counts(None, clip_seconds=12.0)
    units = study_cost.clip_units(config, counts, UNITS, None)
    assert units["manifest_seconds_per_clip"] == units["features_seconds_per_clip"] == 3.0
    assert units["mel_image_seconds_per_clip"] == 2.0 * 3 + 1.0 * 2  # reading 3 times as long, two slices
    assert units["round_trip_seconds_per_clip"] == units["unet_pass_seconds_per_sample"] == 1.0  # one slice
    twice = study_cost.clip_units(config, counts, UNITS, [1, 64, 22])  # the config's input is twice as long
    assert twice["train_seconds_per_clip"] == twice["predict_seconds_per_clip"] == 2.0


def test_esc50_sizes_from_the_options_or_a_manifest(study_cost, config, tmp_path):
    counts = study_cost.dataset_counts(None, clips=2000, folds=5, classes=50, clip_seconds=5.0)
    assert counts["fold_clips"] == dict.fromkeys(range(1, 6), 400)
    config = config | {"protocol": config["protocol"] | {"test_folds": [1, 2, 3, 4, 5]}}
    assert study_cost.split_sizes(config, "fold1", counts) == {"train": 1440, "val": 160, "test": 400}
    rows = [
        {"id": f"c{k}", "class": f"c{k % 50}", "recording": k // 2, "fold": 1 + k % 5, "seconds": 5.0}
        for k in range(2000)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    read = study_cost.dataset_counts(str(tmp_path / "manifest.csv"))
    assert read == counts | {"clips_per_recording": 2.0}
    with pytest.raises(SystemExit, match="fold 6"):
        study_cost.project(config | {"protocol": config["protocol"] | {"test_folds": [6]}}, read, UNITS, ON_GPU, 16)
