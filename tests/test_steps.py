"""Steps that combine modules: mel averages, scoring and selecting generated clips, example plots."""

import shutil
from dataclasses import replace
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import TINY_MEL

from diffaug import CLASSES, steps
from diffaug.audio import fit_length, load_mono
from diffaug.classifier import (
    ClassifierSettings,
    NetworkSettings,
    build_classifier,
    load_classifier,
    predict_proba,
    train_classifier,
)
from diffaug.features import FeatureExtractor, FeatureSpec, load_feature_sets, save_feature_sets
from diffaug.files import load_tensors, save_tensors
from diffaug.pairs import choose_pairs, pair_id
from diffaug.splits import make_split, save_split

PROTOCOL = {"kind": "kfold", "test_folds": [1], "test_fraction": 0.1, "val_fraction": 0.2, "seed": 0}
CLASSIFIER = {"widths": [4, 4, 8], "hidden": 8, "epochs": 1, "batch_size": 8, "learning_rate": 0.01}
SB_CNN = {"model": "sb_cnn", "sb_cnn": {"widths": [4, 8, 8], "hidden": 8}}


def _pairs_of(tiny_dataset, tmp_path, per_class=2, seed=4, replicate=0):
    """The tiny dataset's manifest, fold1 split and the pairs step's table in tmp_path."""
    manifest = tiny_dataset[1]
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    split = make_split(manifest, "fold1", PROTOCOL)
    save_split(split, tmp_path / "split.json")
    settings = {"per_class": per_class, "seed": seed}
    steps.pairs(
        manifest_csv=str(tmp_path / "manifest.csv"),
        split_json=str(tmp_path / "split.json"),
        settings=settings,
        replicate=replicate,
        output=str(tmp_path / "pairs.csv"),
    )
    return manifest, split, pd.read_csv(tmp_path / "pairs.csv")


def test_the_pairs_step_draws_training_pairs_and_a_new_set_per_replicate(tiny_dataset, tmp_path):
    manifest, split, pairs = _pairs_of(tiny_dataset, tmp_path)
    assert len(pairs) == 20 and set(pairs["source_a"]) | set(pairs["source_b"]) <= set(split["train"])
    assert (pairs["fsID_a"] != pairs["fsID_b"]).all()
    sirens = manifest[manifest["id"].isin(split["train"]) & (manifest["class"] == "siren")]
    assert list(zip(*pairs[pairs["class"] == "siren"][["source_a", "source_b"]].T.values)) == choose_pairs(sirens, 2, 4)
    other = _pairs_of(tiny_dataset, tmp_path, replicate=1)[2]
    assert list(other["pair"]) == list(pairs["pair"]) and not other.equals(pairs)


def test_mel_average_averages_the_pairs_of_the_table(tiny_dataset, tmp_path):
    manifest, split, pairs = _pairs_of(tiny_dataset, tmp_path)
    everything = torch.rand(len(manifest), 1, 64, 44)
    sets = {"all": (everything, torch.tensor(manifest["classID"]), list(manifest["id"]))}
    save_feature_sets(tmp_path / "real.safetensors", sets)
    steps.features_mel_average(
        real=str(tmp_path / "real.safetensors"),
        pairs_csv=str(tmp_path / "pairs.csv"),
        output=str(tmp_path / "avg.safetensors"),
    )
    ax, ay, names = load_feature_sets(tmp_path / "avg.safetensors")["train"]
    assert names == list(pairs["pair"]) and ay.tolist() == [c for c in range(10) for _ in range(2)]
    row = {clip: i for i, clip in enumerate(manifest["id"])}
    a, b = pairs.loc[16, ["source_a", "source_b"]]
    torch.testing.assert_close(ax[16], (everything[row[a]] + everything[row[b]]) / 2)


def _scored(tmp_path, name, x, labels, ids):
    save_feature_sets(tmp_path / f"{name}.safetensors", {"train": (x, labels, ids)})
    steps.score_generated(
        features=str(tmp_path / f"{name}.safetensors"),
        weights=str(tmp_path / "baseline.safetensors"),
        classifier=CLASSIFIER,
        output=str(tmp_path / f"{name}.csv"),
    )
    steps.select_generated(
        features=str(tmp_path / f"{name}.safetensors"),
        scores_csv=str(tmp_path / f"{name}.csv"),
        pairs_csv=str(tmp_path / "pairs.csv"),
        keep=0.5,
        output=str(tmp_path / f"{name}_kept.safetensors"),
        fates_csv=str(tmp_path / f"{name}_kept.csv"),
    )
    return pd.read_csv(tmp_path / f"{name}.csv"), pd.read_csv(tmp_path / f"{name}_kept.csv")


def test_scoring_and_confidence_selection_keep_the_same_share_of_every_source(tmp_path):
    torch.manual_seed(0)
    model = build_classifier(NetworkSettings.from_config(CLASSIFIER))
    save_tensors(tmp_path / "baseline.safetensors", model.state_dict())
    labels = torch.tensor([c for c in range(10) for _ in range(4)])
    ids = [pair_id(CLASSES[c], k) for c in range(10) for k in range(4)]
    pd.DataFrame(
        {"pair": ids, "class": [CLASSES[c] for c in labels], "source_a": "a", "source_b": "b", "fsID_a": 1, "fsID_b": 2}
    ).to_csv(tmp_path / "pairs.csv", index=False)
    kept = {}
    for source in ("diffusion", "mel_average"):
        scores, fates = _scored(tmp_path, source, torch.rand(40, 1, 64, 44), labels, ids)
        assert list(scores["clip"]) == ids and scores["confidence"].between(0, 1).all()
        kx, ky, kept[source] = load_feature_sets(tmp_path / f"{source}_kept.safetensors")["train"]
        assert len(kept[source]) == 20 and (torch.bincount(ky, minlength=10) == 2).all()
        assert {"pair", "source_a", "confidence", "kept", "predicted"} <= set(fates.columns)
        assert fates["kept"].sum() == 20 and list(fates["pair"]) == ids
        for _, group in fates.groupby("class"):  # the kept ones are the most confident of their class
            assert group.loc[group["kept"], "confidence"].min() >= group.loc[~group["kept"], "confidence"].max()
    assert kept["diffusion"] != kept["mel_average"]  # each source ranked by its own scores


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
    save_tensors(tmp_path / "baseline.safetensors", model.state_dict())
    generated = torch.rand(12, 1, 32, 44, generator=g) * 5 + 2
    ids = [f"clip{k}" for k in range(12)]
    save_feature_sets(tmp_path / "generated.safetensors", {"train": (generated, y[:12], ids)})
    steps.score_generated(
        features=str(tmp_path / "generated.safetensors"),
        weights=str(tmp_path / "baseline.safetensors"),
        classifier=settings,
        output=str(tmp_path / "scores.csv"),
    )
    scores = pd.read_csv(tmp_path / "scores.csv")
    expected = predict_proba(model, generated)[torch.arange(12), y[:12]]
    torch.testing.assert_close(torch.tensor(scores["confidence"].to_numpy(), dtype=torch.float32), expected)
    other = NetworkSettings.from_config(CLASSIFIER | ({} if network else SB_CNN))
    with pytest.raises(RuntimeError, match="state_dict"):  # weights of one network never load into another
        load_classifier(tmp_path / "baseline.safetensors", other)


def test_per_band_statistics_come_from_the_real_training_clips(tiny_dataset, tmp_path):
    """Added (generated) clips, validation and test clips leave the statistics alone."""
    manifest = tiny_dataset[1]
    split = make_split(manifest, "fold1", PROTOCOL)
    save_split(split, tmp_path / "split.json")
    g = torch.Generator().manual_seed(0)
    real = torch.rand(len(manifest), 1, 16, 12, generator=g)
    ids = list(manifest["id"])
    save_feature_sets(tmp_path / "real.safetensors", {"all": (real, torch.tensor(manifest["classID"]), ids)})
    generated = torch.rand(20, 1, 16, 12, generator=g) * 50 + 100  # far from the real clips
    save_feature_sets(
        tmp_path / "gen.safetensors", {"train": (generated, torch.arange(20) % 10, [f"g{k}" for k in range(20)])}
    )
    settings = CLASSIFIER | SB_CNN | {"normalise": "per_band", "device": "cpu"}
    weights = tmp_path / "model.safetensors"
    steps.train_classifier(
        real=str(tmp_path / "real.safetensors"),
        split_json=str(tmp_path / "split.json"),
        generated=[str(tmp_path / "gen.safetensors")],
        arm="diffusion",
        seed=0,
        split_name="fold1",
        classifier=settings,
        specaugment=None,
        weights=str(weights),
        metrics=str(tmp_path / "metrics.json"),
        replicate=0,
        features={"n_mels": 16},
        description=str(tmp_path / "model.json"),
    )
    saved = load_tensors(weights)[0]
    train_rows = real[torch.tensor([ids.index(clip) for clip in split["train"]])]
    torch.testing.assert_close(saved["norm.mean"].flatten().double(), train_rows.double().mean((0, 1, 3)))
    torch.testing.assert_close(saved["norm.std"].flatten().double(), train_rows.double().std((0, 1, 3), correction=0))


def test_validation_clips_train_only_when_the_config_says_so(tiny_dataset, tmp_path):
    manifest = tiny_dataset[1]
    split = make_split(manifest, "fold1", PROTOCOL)
    real = torch.rand(len(manifest), 1, 4, 4)
    save_feature_sets(tmp_path / "real.pt", {"all": (real, torch.tensor(manifest["classID"]), list(manifest["id"]))})
    last = ClassifierSettings.from_config(CLASSIFIER | {"epoch_choice": "last"})
    parts = steps.training_parts(str(tmp_path / "real.pt"), split, last)
    assert parts["train"][2] == split["train"] and parts["val"][2] == split["val"]
    joined = steps.training_parts(str(tmp_path / "real.pt"), split, replace(last, train_on_validation=True))
    assert joined["train"][2] == split["train"] + split["val"] and len(joined["train"][0]) == len(joined["train"][2])
    assert joined["val"][2] == [] and len(joined["val"][0]) == 0
    with pytest.raises(ValueError, match="no validation clips, so no epoch can be chosen"):
        steps.training_parts(
            str(tmp_path / "real.pt"), {**split, "val": []}, ClassifierSettings.from_config(CLASSIFIER)
        )


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


def test_round_trip_features_are_the_pair_sources_through_the_mel_image(tiny_dataset, tiny_pipeline, tmp_path):
    manifest, split, pairs = _pairs_of(tiny_dataset, tmp_path)
    features = {"sample_rate": 22050, "num_samples": 22050, "n_fft": 1024, "hop_length": 512, "n_mels": 16}
    steps.features_round_trip(
        manifest_csv=str(tmp_path / "manifest.csv"),
        pairs_csv=str(tmp_path / "pairs.csv"),
        model_dir=str(tiny_pipeline),
        features=features,
        seed=4,
        replicate=0,
        output=str(tmp_path / "round_trip.safetensors"),
    )
    x, y, names = load_feature_sets(tmp_path / "round_trip.safetensors")["train"]
    assert x.shape == (20, 1, 16, 44) and y.tolist() == [c for c in range(10) for _ in range(2)]
    sirens = pairs[pairs["class"] == "siren"]
    assert set(names[16:18]) <= set(sirens["source_a"]) | set(sirens["source_b"])
    source = load_mono(manifest.set_index("id").loc[names[16], "path"], 22050)
    real = FeatureExtractor(FeatureSpec(**features)).from_audio(fit_length(source, TINY_MEL.slice_samples))
    assert not torch.allclose(x[16], real)  # the clip went through the image and Griffin-Lim
    assert float(x[16].sum()) == pytest.approx(float(real.sum()), rel=0.3)  # at the source's loudness


def test_the_listening_page_plays_what_each_source_adds(tiny_dataset, tiny_pipeline, tmp_path):
    import base64
    import re

    manifest, split, pairs = _pairs_of(tiny_dataset, tmp_path, per_class=3)
    features = {"sample_rate": 22050, "num_samples": 22050, "n_fft": 1024, "hop_length": 512, "n_mels": 64}
    sets = {"all": (torch.rand(len(manifest), 1, 64, 44), torch.tensor(manifest["classID"]), list(manifest["id"]))}
    save_feature_sets(tmp_path / "real.safetensors", sets)
    average = str(tmp_path / "avg.safetensors")
    steps.features_mel_average(
        real=str(tmp_path / "real.safetensors"), pairs_csv=str(tmp_path / "pairs.csv"), output=average
    )
    shown = ["air_conditioner", "siren"]  # two classes keep the test short
    pairs = pairs[pairs["class"].isin(shown)]
    pairs.to_csv(tmp_path / "rep0.csv", index=False)
    inputs = {"manifest_csv": str(tmp_path / "manifest.csv"), "pairs_csv": str(tmp_path / "rep0.csv")}

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

    folders = []
    for name in shown:  # stand-ins for the interpolated clips: real WAVs named by their pair
        folder = tmp_path / "generated" / name
        folder.mkdir(parents=True)
        for pair in pairs[pairs["class"] == name]["pair"]:
            shutil.copy(manifest[manifest["class"] == name]["path"].iloc[0], folder / f"{pair}.wav")
        folders.append(str(folder))
    listen = partial(
        steps.listen,
        **inputs,
        class_dirs=folders,
        mel_average=average,
        model_dir=str(tiny_pipeline),
        features=features,
        seed=0,
    )
    listen(output=str(tmp_path / "listen.html"))
    page = (tmp_path / "listen.html").read_text()
    assert page.count("<audio") == 2 * 2 * 6 and page.count("<img") == 2 * 2 * 6
    assert "siren-00002" not in page  # the first two pairs of each class only
    first = pairs[pairs["class"] == "siren"].iloc[0]
    assert f"pair siren-00000: A = {first['source_a']} (recording {first['fsID_a']})" in page
    embedded = re.findall(r'src="data:audio/wav;base64,([^"]+)"', page)
    assert base64.b64encode((tmp_path / "generated" / "siren" / "siren-00000.wav").read_bytes()).decode() in embedded

    (Path(folders[0]) / "air_conditioner-00001.wav").unlink()
    with pytest.raises(FileNotFoundError, match="air_conditioner-00001.wav: the interpolated clip .* missing"):
        listen(output=str(tmp_path / "again.html"))
