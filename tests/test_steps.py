"""Steps that combine modules: mel averages, scoring and selecting generated clips, example plots."""

import itertools
import json
import shutil
from dataclasses import replace
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import CLASSIFIER, PROTOCOL, SB_CNN, TINY_MEL, class_list_file

from diffaug import classifier as classifier_module
from diffaug import steps
from diffaug.audio import fit_length, load_mono, resample
from diffaug.classifier import (
    ClassifierSettings,
    NetworkSettings,
    build_classifier,
    load_classifier,
    predict_proba,
    train_classifier,
    training_parts,
)
from diffaug.features import FeatureExtractor, FeatureSpec, load_feature_sets, save_feature_sets, select_parts
from diffaug.files import load_tensors, save_tensors
from diffaug.novelty import penultimate
from diffaug.pairs import pair_id
from diffaug.splits import make_split, save_split
from diffaug.synthetic import CLASSES


def _pairs_of(paired_dataset, tmp_path, pairs_per_class=2, seed=4, generated_set=0):
    """The paired dataset's manifest, fold1 split and the pairs step's table in tmp_path."""
    manifest = paired_dataset[1]
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    split = make_split(manifest, "fold1", PROTOCOL)
    save_split(split, tmp_path / "split.json")
    settings = {"pairs_per_class": pairs_per_class, "seed": seed}
    steps.pairs(
        manifest_csv=str(tmp_path / "manifest.csv"),
        split_json=str(tmp_path / "split.json"),
        settings=settings,
        generated_set=generated_set,
        output=str(tmp_path / "pairs.csv"),
    )
    return manifest, split, pd.read_csv(tmp_path / "pairs.csv")


def test_the_pairs_step_draws_pairs_within_a_judge_half_and_new_ones_per_generated_set(paired_dataset, tmp_path):
    manifest, split, pairs = _pairs_of(paired_dataset, tmp_path, pairs_per_class=4)
    assert len(pairs) == 40 and set(pairs["source_a"]) | set(pairs["source_b"]) <= set(split["train"])
    assert (pairs["recording_a"] != pairs["recording_b"]).all()
    half_of = {clip: half for half, clips in enumerate(split["judge_halves"]) for clip in clips}
    assert (pairs["source_a"].map(half_of) == pairs["half"]).all() and (
        pairs["source_b"].map(half_of) == pairs["half"]
    ).all()
    assert (pairs.groupby("class")["half"].value_counts() == 2).all()  # both judges score half of each class
    halves = [set(manifest.set_index("id").loc[clips, "recording"]) for clips in split["judge_halves"]]
    assert not halves[0] & halves[1] and halves[0] | halves[1] == set(
        manifest.set_index("id").loc[split["train"], "recording"]
    )
    other = _pairs_of(paired_dataset, tmp_path, pairs_per_class=4, generated_set=1)[2]
    assert list(other["pair"]) == list(pairs["pair"]) and not other.equals(pairs)
    # which clip comes first is drawn, not the alphabetically first: the round trip takes the first
    assert (pairs["source_a"] > pairs["source_b"]).any() and (pairs["source_a"] < pairs["source_b"]).any()


@pytest.mark.parametrize("log", [False, True])
def test_mel_average_averages_the_pairs_of_the_table_in_power(paired_dataset, tmp_path, log, class_list):
    manifest, split, pairs = _pairs_of(paired_dataset, tmp_path)
    everything = torch.rand(len(manifest), 1, 64, 44) * (-40 if log else 1)
    sets = {"all": (everything, torch.tensor(manifest["label"]), list(manifest["id"]))}
    save_feature_sets(tmp_path / "real.safetensors", sets)
    steps.features_mel_average(
        classes_txt=class_list,
        real=str(tmp_path / "real.safetensors"),
        pairs_csv=str(tmp_path / "pairs.csv"),
        features={"n_mels": 64, "log": log},
        output=str(tmp_path / "avg.safetensors"),
    )
    ax, ay, names = load_feature_sets(tmp_path / "avg.safetensors")["train"]
    assert names == list(pairs["pair"]) and ay.tolist() == [c for c in range(10) for _ in range(2)]
    row = {clip: i for i, clip in enumerate(manifest["id"])}
    a, b = (everything[row[clip]].double() for clip in pairs.loc[16, ["source_a", "source_b"]])
    # with dB features, the mean of the two powers in dB (not the mean of the dB: a geometric mean)
    expected = 10 * torch.log10((10 ** (a / 10) + 10 ** (b / 10)) / 2) if log else (a + b) / 2
    torch.testing.assert_close(ax[16].double(), expected, rtol=1e-5, atol=1e-4)
    if log:
        assert not torch.allclose(ax[16].double(), (a + b) / 2, atol=1e-2)


def _judges_and_pairs(tmp_path, network=None):
    """Two judges of different weights, and a pairs table of 4 pairs per class alternating between
    the halves; returns the models and the pair ids."""
    models = []
    for half in (0, 1):
        torch.manual_seed(half)
        models.append(build_classifier(NetworkSettings.from_config(network or CLASSIFIER)))
        save_tensors(tmp_path / f"judge{half}.safetensors", models[-1].state_dict())
    ids = [pair_id(CLASSES[c], k) for c in range(10) for k in range(4)]
    pd.DataFrame(
        {
            "pair": ids,
            "class": [CLASSES[c] for c in range(10) for _ in range(4)],
            "source_a": [f"real{k}" for k in range(40)],
            "source_b": "b",
            "recording_a": 1,
            "recording_b": 2,
            "half": [k % 2 for k in range(40)],
        }
    ).to_csv(tmp_path / "pairs.csv", index=False)
    return models, ids


def _score(tmp_path, generators: dict, real, settings=CLASSIFIER) -> pd.DataFrame:
    """score_generated of `generators` ({generator: features}, one per pair) and of the pairs' first clips
    among the real clips `real`: every origin's scores, concatenated."""
    labels = torch.tensor([c for c in range(10) for _ in range(4)])
    ids = pd.read_csv(tmp_path / "pairs.csv")["pair"].tolist()
    for generator, x in generators.items():
        save_feature_sets(tmp_path / f"{generator}.safetensors", {"train": (x, labels, ids)})
    save_feature_sets(tmp_path / "sources.safetensors", {"all": (real, labels, [f"real{k}" for k in range(40)])})
    for origin in [*generators, "sources"]:
        steps.score_generated(
            classes_txt=class_list_file(tmp_path),
            origin=origin,
            features=str(tmp_path / f"{origin}.safetensors"),
            pairs_csv=str(tmp_path / "pairs.csv"),
            judges=[str(tmp_path / f"judge{half}.safetensors") for half in (0, 1)],
            classifier=settings,
            output=str(tmp_path / f"{origin}.csv"),
        )
    return pd.concat([pd.read_csv(tmp_path / f"{origin}.csv") for origin in [*generators, "sources"]])


def test_each_clip_is_scored_by_the_judge_of_the_other_half(tmp_path):
    models, ids = _judges_and_pairs(tmp_path)
    g = torch.Generator().manual_seed(1)
    generated, real = torch.rand(40, 1, 64, 44, generator=g), torch.rand(40, 1, 64, 44, generator=g)
    scores = _score(tmp_path, {"diffusion": generated}, real)
    assert list(scores["origin"].unique()) == ["diffusion", "sources"]
    for origin, x in (("diffusion", generated), ("sources", real)):  # the sources: each pair's first clip as it is
        rows = scores[scores["origin"] == origin].reset_index(drop=True)
        assert list(rows["clip"]) == ids and list(rows["judge"]) == [1 - k % 2 for k in range(40)]
        for k in range(40):
            expected = predict_proba(models[1 - k % 2], x[k : k + 1])[0]
            assert rows.loc[k, "confidence"] == pytest.approx(float(expected[k // 4]), abs=1e-6)
            assert rows.loc[k, "predicted"] == CLASSES[int(expected.argmax())]


def test_a_clips_novelty_is_its_distance_to_the_nearest_training_clip(tmp_path):
    models, ids = _judges_and_pairs(tmp_path)
    g = torch.Generator().manual_seed(3)
    real = torch.rand(50, 1, 64, 44, generator=g) + 0.1  # real0..39 train, real40..49 validate
    generated = torch.rand(40, 1, 64, 44, generator=g) + 0.1
    generated[::2] = real[torch.arange(1, 40, 2)]  # every other clip a copy of a training clip
    labels, real_ids = torch.arange(50) // 5 % 10, [f"real{k}" for k in range(50)]
    save_feature_sets(tmp_path / "real.safetensors", {"all": (real, labels, real_ids)})
    pair_labels = torch.arange(40) // 4  # the class of each pair
    save_feature_sets(tmp_path / "set0" / "diffusion.safetensors", {"train": (generated, pair_labels, ids)})
    save_split({"split": "fold1", "train": real_ids[:40], "val": real_ids[40:], "test": []}, tmp_path / "split.json")
    steps.novelty(
        classes_txt=class_list_file(tmp_path),
        real=str(tmp_path / "real.safetensors"),
        split_json=str(tmp_path / "split.json"),
        pairs_csvs=[str(tmp_path / "pairs.csv")],
        scored=[str(tmp_path / "set0" / "diffusion.safetensors")],
        judges=[str(tmp_path / f"judge{half}.safetensors") for half in (0, 1)],
        classifier=CLASSIFIER,
        in_db=False,
        output=str(tmp_path / "novelty.csv"),
    )
    table = pd.read_csv(tmp_path / "novelty.csv")
    assert list(table.columns) == ["set", "origin", "clip", "class", "judge", "feature_distance", "judge_distance"]
    made = table[table["origin"] == "diffusion"].reset_index(drop=True)
    assert list(made["clip"]) == ids and list(made["judge"]) == [1 - k % 2 for k in range(40)]  # as scored
    assert (made.loc[::2, ["feature_distance", "judge_distance"]] == 0).all().all()
    in_db = lambda x: 10 * torch.log10(x.flatten(1).double())  # noqa: E731
    exact = partial(torch.cdist, compute_mode="donot_use_mm_for_euclid_dist")
    expected = exact(in_db(generated[1::2]), in_db(real[:40])).min(1).values
    torch.testing.assert_close(torch.tensor(made.loc[1::2, "feature_distance"].to_numpy()), expected.float().double())
    # a source clip (a training clip itself) is measured against the other training clips
    sources = table[table["origin"] == "sources"].reset_index(drop=True)
    between = exact(in_db(real[:40]), in_db(real[:40])).fill_diagonal_(float("inf")).min(1).values
    torch.testing.assert_close(torch.tensor(sources["feature_distance"].to_numpy()), between.float().double())
    judged = penultimate(models[1], real[:1], "fp32", "cpu").double()  # the first pair's judge is half 1's
    others = penultimate(models[1], real[1:40], "fp32", "cpu").double()
    assert sources.loc[0, "judge_distance"] == pytest.approx(float(exact(judged, others).min()), rel=1e-4)
    # the validation clips, once per judge, against every training clip
    validation = table[table["origin"] == "validation"]
    assert list(validation["clip"]) == real_ids[40:] * 2 and list(validation["judge"]) == [0] * 10 + [1] * 10
    nearest = exact(in_db(real[40:]), in_db(real[:40])).min(1).values.float().double()
    torch.testing.assert_close(torch.tensor(validation["feature_distance"].to_numpy()[:10]), nearest)
    assert validation["set"].isna().all() and set(made["set"]) == {0}
    assert list(made["class"]) == [CLASSES[c] for c in pair_labels]


def test_confidence_selection_keeps_the_same_share_of_every_generator(tmp_path):
    _judges_and_pairs(tmp_path)
    g = torch.Generator().manual_seed(2)
    generators = {
        generator: 50 * torch.rand(40, 1, 64, 44, generator=g)
        for generator in ("diffusion", "mel_average", "round_trip")
    }
    _score(tmp_path, generators, torch.rand(40, 1, 64, 44, generator=g))
    kept = {}
    for generator in generators:
        steps.select_generated(
            features=str(tmp_path / f"{generator}.safetensors"),
            scores_csv=str(tmp_path / f"{generator}.csv"),
            pairs_csv=str(tmp_path / "pairs.csv"),
            keep=0.5,
            output=str(tmp_path / f"{generator}_kept.safetensors"),
            fates_csv=str(tmp_path / f"{generator}_kept.csv"),
        )
        fates = pd.read_csv(tmp_path / f"{generator}_kept.csv")
        kx, ky, kept[generator] = load_feature_sets(tmp_path / f"{generator}_kept.safetensors")["train"]
        assert len(kept[generator]) == 20 and (torch.bincount(ky, minlength=10) == 2).all()
        assert {"pair", "source_a", "confidence", "kept", "predicted", "judge"} <= set(fates.columns)
        assert fates["kept"].sum() == 20 and fates["confidence"].between(0, 1).all()
        # the kept ones are the most confident of their class by each judge (whose scales may differ)
        for _, group in fates.groupby(["class", "judge"]):
            assert group["kept"].sum() == 1
            assert group.loc[group["kept"], "confidence"].min() >= group.loc[~group["kept"], "confidence"].max()
    assert kept["diffusion"] != kept["mel_average"]  # each generator's clips ranked by their own scores


@pytest.mark.parametrize(
    "network",
    [{}, SB_CNN | {"normalise": "per_band"}],
    ids=["published_cnn", "sb_cnn_per_band"],
)
def test_scores_come_from_the_saved_weights_in_their_own_network(tmp_path, network):
    settings = CLASSIFIER | network
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 1, 32, 44, generator=g) * 5 + 2, torch.arange(40) % 10
    trained = ClassifierSettings.from_config(settings)
    model = train_classifier((x, y), (x[:10], y[:10]), (x[:10], y[:10]), trained, seed=0)[0]
    _judges_and_pairs(tmp_path)
    for half in (0, 1):  # both judges the trained network
        save_tensors(tmp_path / f"judge{half}.safetensors", model.state_dict())
    generated = torch.rand(40, 1, 32, 44, generator=g) * 5 + 2
    scores = _score(tmp_path, {"diffusion": generated}, x, settings)
    scores = scores[scores["origin"] == "diffusion"]
    expected = predict_proba(model, generated)[torch.arange(40), torch.arange(40) // 4]
    torch.testing.assert_close(torch.tensor(scores["confidence"].to_numpy(), dtype=torch.float32), expected)
    other = NetworkSettings.from_config(CLASSIFIER | ({} if network else SB_CNN))
    with pytest.raises(RuntimeError, match="state_dict"):  # weights of one network never load into another
        load_classifier(tmp_path / "judge0.safetensors", other)


def test_a_splits_judges_train_on_one_half_each_and_score_the_other(paired_dataset, tmp_path, class_list):
    manifest, split, _ = _pairs_of(paired_dataset, tmp_path)
    real = torch.rand(len(manifest), 1, 16, 16)
    save_feature_sets(tmp_path / "real.pt", {"all": (real, torch.tensor(manifest["label"]), list(manifest["id"]))})
    files = [[str(tmp_path / f"half{half}" / name) for half in (0, 1)] for name in FILES[:2] + ("held_out.csv",)]
    steps.train_judges(
        classes_txt=class_list,
        real=str(tmp_path / "real.pt"),
        split_json=str(tmp_path / "split.json"),
        classifier=CLASSIFIER | {"device": "cpu"},
        seed=0,
        weights=files[0],
        metrics=files[1],
        held_out=files[2],
    )
    for half in (0, 1):
        metrics = json.loads((tmp_path / f"half{half}" / "metrics.json").read_text())
        assert metrics["half"] == half and metrics["train_clips"] == len(split["judge_halves"][half])
        held_out = pd.read_csv(tmp_path / f"half{half}" / "held_out.csv")
        assert list(held_out["clip"]) == split["judge_halves"][1 - half] and (held_out["judge"] == half).all()
        assert metrics["held_out_accuracy"] == pytest.approx((held_out["class"] == held_out["predicted"]).mean())
    model = load_classifier(tmp_path / "half1" / "model.safetensors", NetworkSettings.from_config(CLASSIFIER))
    rows = torch.tensor([list(manifest["id"]).index(clip) for clip in held_out["clip"]])
    classes = torch.tensor([CLASSES.index(c) for c in held_out["class"]])
    expected = predict_proba(model, real[rows])[torch.arange(len(rows)), classes]
    torch.testing.assert_close(torch.tensor(held_out["confidence"].to_numpy(), dtype=torch.float32), expected)
    assert not list(tmp_path.glob("half*/checkpoint.safetensors"))


def test_per_band_statistics_come_from_the_real_training_clips(tiny_dataset, tmp_path, class_list):
    """Added (generated) clips, validation and test clips leave the statistics alone."""
    manifest = tiny_dataset[1]
    split = make_split(manifest, "fold1", PROTOCOL)
    save_split(split, tmp_path / "split.json")
    g = torch.Generator().manual_seed(0)
    real = torch.rand(len(manifest), 1, 16, 12, generator=g)
    ids = list(manifest["id"])
    save_feature_sets(tmp_path / "real.safetensors", {"all": (real, torch.tensor(manifest["label"]), ids)})
    generated = torch.rand(20, 1, 16, 12, generator=g) * 50 + 100  # far from the real clips
    save_feature_sets(
        tmp_path / "gen.safetensors", {"train": (generated, torch.arange(20) % 10, [f"g{k}" for k in range(20)])}
    )
    settings = CLASSIFIER | SB_CNN | {"normalise": "per_band", "device": "cpu"}
    weights = tmp_path / "model.safetensors"
    steps.train_classifiers(
        classes_txt=class_list,
        real=str(tmp_path / "real.safetensors"),
        split_json=str(tmp_path / "split.json"),
        generated=[str(tmp_path / "gen.safetensors")],
        arm="diffusion",
        seeds=[0],
        generated_sets=[0],
        split_name="fold1",
        classifier=settings,
        specaugment=None,
        features={"n_mels": 16},
        weights=[str(weights)],
        metrics=[str(tmp_path / "metrics.json")],
        descriptions=[str(tmp_path / "model.json")],
    )
    saved = load_tensors(weights)[0]
    train_rows = real[torch.tensor([ids.index(clip) for clip in split["train"]])]
    torch.testing.assert_close(saved["norm.mean"].flatten().double(), train_rows.double().mean((0, 1, 3)))
    torch.testing.assert_close(saved["norm.std"].flatten().double(), train_rows.double().std((0, 1, 3), correction=0))


def _arm_runs(tmp_path, folder, class_list, split_json, seeds, generated):
    """train_classifiers of the diffusion arm, `seeds` (each on set k = its index mod 2) into `folder`:
    the paths of each seed's weights, metrics and model.json."""
    runs = [[str(tmp_path / folder / f"seed{seed}" / name) for seed in seeds] for name in FILES]
    steps.train_classifiers(
        classes_txt=class_list,
        real=str(tmp_path / "real.safetensors"),
        split_json=split_json,
        generated=generated,
        arm="diffusion",
        seeds=seeds,
        generated_sets=[seed % 2 for seed in seeds],
        split_name="fold1",
        classifier=CLASSIFIER | {"epochs": 3},
        specaugment=None,
        features={"n_mels": 64},
        weights=runs[0],
        metrics=runs[1],
        descriptions=runs[2],
    )
    return runs


FILES = ("model.safetensors", "metrics.json", "model.json")


def test_an_arms_seeds_train_in_one_job_each_as_alone_and_a_stopped_job_keeps_its_finished_runs(
    tiny_dataset, class_list, tmp_path, monkeypatch
):
    manifest = tiny_dataset[1]
    save_split(make_split(manifest, "fold1", PROTOCOL), tmp_path / "split.json")
    g = torch.Generator().manual_seed(0)
    save_feature_sets(
        tmp_path / "real.safetensors",
        {
            "all": (
                torch.rand(len(manifest), 1, 64, 44, generator=g),
                torch.tensor(manifest["label"]),
                list(manifest["id"]),
            )
        },
    )
    generated = []
    for k in range(2):
        generated.append(str(tmp_path / f"set{k}.safetensors"))
        clips = (torch.rand(20, 1, 64, 44, generator=g), torch.arange(20) % 10, [f"g{k}-{i}" for i in range(20)])
        save_feature_sets(generated[-1], {"train": clips})
    run = partial(_arm_runs, tmp_path, class_list=class_list, split_json=str(tmp_path / "split.json"))
    together = run("together", seeds=[0, 1], generated=generated)
    alone = run("alone", seeds=[1], generated=generated)
    for path, other in zip([paths[1] for paths in together], [paths[0] for paths in alone]):
        assert Path(path).read_bytes() == Path(other).read_bytes()
    assert json.loads(Path(together[1][1]).read_text())["generated_set"] == 1
    epochs, real_epoch = [], classifier_module._ClassifierTraining.epoch

    def counted(self, *args):
        if len(epochs) == 4:
            raise RuntimeError("stopped")
        epochs.append(self)
        return real_epoch(self, *args)

    monkeypatch.setattr(classifier_module._ClassifierTraining, "epoch", counted)
    with pytest.raises(RuntimeError, match="stopped"):
        run("stopped", seeds=[0, 1], generated=generated)
    for path in (tmp_path / "stopped").glob("seed*/model*"):
        path.unlink()  # Snakemake removes a stopped job's outputs before it runs again
    epochs.clear()
    resumed = run("stopped", seeds=[0, 1], generated=generated)
    assert len(epochs) == 2  # seed 0 taken up as it ended; seed 1 from its checkpoint after one epoch
    for paths, others in zip(resumed, together):
        assert [Path(p).read_bytes() for p in paths] == [Path(p).read_bytes() for p in others]
    assert not list((tmp_path / "stopped").glob("seed*/checkpoint.safetensors"))


def test_validation_clips_train_only_when_the_config_says_so(tiny_dataset, tmp_path):
    manifest = tiny_dataset[1]
    split = make_split(manifest, "fold1", PROTOCOL)
    real = torch.rand(len(manifest), 1, 4, 4)
    save_feature_sets(tmp_path / "real.pt", {"all": (real, torch.tensor(manifest["label"]), list(manifest["id"]))})
    last = ClassifierSettings.from_config(CLASSIFIER | {"epoch_choice": "last"})
    parts = select_parts(tmp_path / "real.pt", split)
    assert training_parts(parts, split, last) == parts
    joined = training_parts(parts, split, replace(last, train_on_validation=True))
    assert joined["train"][2] == split["train"] + split["val"] and len(joined["train"][0]) == len(joined["train"][2])
    assert joined["val"][2] == [] and len(joined["val"][0]) == 0
    no_val = select_parts(tmp_path / "real.pt", {**split, "val": []})
    with pytest.raises(ValueError, match="no validation clips, so no epoch can be chosen"):
        training_parts(no_val, split, replace(last, epoch_choice="validation"))


def test_example_plot_uses_the_generating_pipelines_mel(tiny_dataset, tiny_pipeline, tmp_path, monkeypatch):
    manifest = tiny_dataset[1]
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    save_split(make_split(manifest, "fold1", PROTOCOL), tmp_path / "split.json")
    generated = tmp_path / "generated" / "siren"
    generated.mkdir(parents=True)
    shutil.copy(manifest[manifest["class"] == "siren"]["path"].iloc[0], generated / "siren-00000.wav")
    drawn = {}

    def draw(real, fake, path):
        drawn.update(real=real, fake=fake)
        Path(path).write_bytes(b"png")

    monkeypatch.setattr("diffaug.plots.examples_plot", draw)

    def plot(model_dir):
        steps.plot_examples(
            manifest_csv=str(tmp_path / "manifest.csv"),
            split_json=str(tmp_path / "split.json"),
            class_dirs=[str(generated)],
            model_dir=str(model_dir),
            output=str(tmp_path / "examples.png"),
        )

    plot(tiny_pipeline)
    assert set(drawn["real"]) == set(drawn["fake"]) == {"siren"}
    assert drawn["fake"]["siren"].shape[-2:] == (TINY_MEL.y_res, TINY_MEL.x_res)  # the config's demo mel is 32 x 32
    with pytest.raises(FileNotFoundError, match="mel_config.json"):
        plot(tmp_path)


def test_round_trip_features_are_each_pairs_first_clip_through_the_mel_image(paired_dataset, tiny_pipeline, tmp_path):
    manifest, split, pairs = _pairs_of(paired_dataset, tmp_path, pairs_per_class=4)
    features = {"sample_rate": 22050, "num_samples": 8000, "n_fft": 1024, "hop_length": 512, "n_mels": 16}
    round_trip = partial(
        steps.features_round_trip,
        manifest_csv=str(tmp_path / "manifest.csv"),
        classes_txt=class_list_file(tmp_path),
        pairs_csv=str(tmp_path / "pairs.csv"),
        model_dir=str(tiny_pipeline),
        seed=4,
        generated_set=0,
        output=str(tmp_path / "round_trip.safetensors"),
    )
    round_trip(features=features)
    x, y, names = load_feature_sets(tmp_path / "round_trip.safetensors")["train"]
    assert names == list(pairs["pair"]) and x.shape == (40, 1, 16, 16)  # one clip per pair, as every generator
    assert y.tolist() == [c for c in range(10) for _ in range(4)]
    k = 16
    source = load_mono(manifest.set_index("id").loc[pairs.loc[k, "source_a"], "path"], 22050)
    real = FeatureExtractor(FeatureSpec(**features)).from_audio(fit_length(source, TINY_MEL.slice_samples))
    assert not torch.allclose(x[k], real)  # the clip went through the image and Griffin-Lim
    assert float(x[k].sum()) == pytest.approx(float(real.sum()), rel=0.3)  # at the source's loudness
    for a, b in itertools.combinations(range(40), 2):  # a clip first in two pairs went through once
        assert torch.equal(x[a], x[b]) == (pairs.loc[a, "source_a"] == pairs.loc[b, "source_a"])
    # the tiny pipeline's 16 x 16 image holds 0.37 s: a 1 s classifier input would end in silence
    with pytest.raises(ValueError, match=r"generated clips last 0\.37 s, shorter than the classifier's 1\.00 s"):
        round_trip(features=features | {"num_samples": 22050})


def test_the_listening_page_plays_what_each_source_adds(
    paired_dataset, tiny_pipeline, tmp_path, class_list, monkeypatch
):
    import base64
    import io
    import re

    monkeypatch.setattr("diffaug.listen.PAIRS_ON_PAGE", 4)  # two pairs of each of the two classes

    import soundfile as sf

    manifest, split, pairs = _pairs_of(paired_dataset, tmp_path, pairs_per_class=3)
    features = {"sample_rate": 22050, "num_samples": 22050, "n_fft": 1024, "hop_length": 512, "n_mels": 64}
    sets = {"all": (torch.rand(len(manifest), 1, 64, 44), torch.tensor(manifest["label"]), list(manifest["id"]))}
    save_feature_sets(tmp_path / "real.safetensors", sets)
    average = str(tmp_path / "avg.safetensors")
    steps.features_mel_average(
        classes_txt=class_list,
        real=str(tmp_path / "real.safetensors"),
        pairs_csv=str(tmp_path / "pairs.csv"),
        features=features,
        output=average,
    )
    shown = ["air_conditioner", "siren"]  # two classes keep the test short
    pairs = pairs[pairs["class"].isin(shown)]
    pairs.to_csv(tmp_path / "set0.csv", index=False)
    inputs = {"manifest_csv": str(tmp_path / "manifest.csv"), "pairs_csv": str(tmp_path / "set0.csv")}

    steps.listen(
        **inputs,
        class_dirs=[],
        mel_average=average,
        model_dir=None,
        features=features,
        seed=0,
        output=str(tmp_path / "averages.html"),
    )
    page = (tmp_path / "averages.html").read_text()
    assert page.count("<audio") == 2 * 2 * 3  # two pairs per class: A, B and their mel average
    assert "round trip" not in page and "as the classifier reads it" in page

    folders = {"generated": [], "reconstructed": [], "sampled": []}
    for kind, clip in (("generated", 0), ("reconstructed", 1), ("sampled", 0)):  # stand-ins: real WAVs by pair
        for name in shown:
            folder = tmp_path / kind / name
            folder.mkdir(parents=True)
            for pair in pairs[pairs["class"] == name]["pair"]:
                shutil.copy(manifest[manifest["class"] == name]["path"].iloc[clip], folder / f"{pair}.wav")
            folders[kind].append(str(folder))
    listen = partial(
        steps.listen,
        **inputs,
        class_dirs=folders["generated"],
        reconstructed_dirs=folders["reconstructed"],
        mel_average=average,
        model_dir=str(tiny_pipeline),
        features=features,
        seed=0,
    )
    listen(output=str(tmp_path / "listen.html"), sampled_dirs=folders["sampled"])
    page = (tmp_path / "listen.html").read_text()
    # A and B real and round trip, A reconstructed, interpolated, averaged, sampled
    assert page.count('title="sampled: the class from noise"') == 2 * 2 and "Sampled: a clip of the pair" in page
    listen(output=str(tmp_path / "listen.html"))
    page = (tmp_path / "listen.html").read_text()
    assert page.count("<audio") == 2 * 2 * 7 and page.count("<img") == 2 * 2 * 7 and "Sampled" not in page
    assert page.count('title="A: reconstruction"') == 2 * 2 and "Reconstruction: A inverted" in page
    assert "siren-00002" not in page  # the first two pairs of each class only
    first = pairs[pairs["class"] == "siren"].iloc[0]
    assert f"pair siren-00000: A = {first['source_a']} (recording {first['recording_a']})" in page
    assert page.count('src="data:audio/ogg;base64,') == 2 * 2 * 7 and "audio/wav" not in page
    row = page[page.index("<h3>pair siren-00000:") :].split("</div>")[0]
    played = dict(re.findall(r'title="([^"]+)" src="data:audio/ogg;base64,([^"]+)"', row))
    for kind, label in (("generated", "diffusion: A to B"), ("reconstructed", "A: reconstruction")):
        heard, rate = sf.read(io.BytesIO(base64.b64decode(played[label])), dtype="float32")
        wav = resample(load_mono(tmp_path / kind / "siren" / "siren-00000.wav", 22050), 22050, rate)
        assert len(heard) == len(wav), label  # the whole file, at Opus's rate
        assert torch.corrcoef(torch.stack([torch.from_numpy(heard), wav]))[0, 1] > 0.8, label  # its sound

    (Path(folders["reconstructed"][0]) / "air_conditioner-00001.wav").unlink()
    with pytest.raises(FileNotFoundError, match="air_conditioner-00001.wav: the clip .* missing; rerun reconstruct"):
        listen(output=str(tmp_path / "again.html"))
