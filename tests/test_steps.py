"""Steps that combine modules: mel averages, scoring and selecting generated clips, example plots."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import TINY_MEL

from diffaug import CLASSES, steps
from diffaug.audio import fit_length, load_mono
from diffaug.classifier import SoundCNN
from diffaug.features import FeatureExtractor, FeatureSpec, load_feature_sets, save_feature_sets
from diffaug.files import save_tensors
from diffaug.pairs import choose_pairs
from diffaug.splits import make_split, save_split

PROTOCOL = {"kind": "kfold", "test_folds": [1], "test_fraction": 0.1, "val_fraction": 0.2, "seed": 0}
CLASSIFIER = {"widths": [4, 4, 8], "hidden": 8, "epochs": 1, "batch_size": 8, "learning_rate": 0.01}


def test_mel_average_uses_the_diffusion_pairs(tiny_dataset, tmp_path):
    manifest = tiny_dataset[1]
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    split = make_split(manifest, "fold1", PROTOCOL)
    save_split(split, tmp_path / "split.json")
    train = manifest[manifest["id"].isin(split["train"])].reset_index(drop=True)
    everything = torch.rand(len(manifest), 1, 64, 44)
    sets = {"all": (everything, torch.tensor(manifest["classID"]), list(manifest["id"]))}
    save_feature_sets(tmp_path / "real.safetensors", sets)
    x = everything[torch.tensor(manifest.index[manifest["id"].isin(split["train"])].to_numpy())]
    steps.features_mel_average(
        str(tmp_path / "manifest.csv"),
        str(tmp_path / "split.json"),
        str(tmp_path / "real.safetensors"),
        {"per_class": 2, "seed": 4},
        str(tmp_path / "avg.safetensors"),
    )
    ax, ay, names = load_feature_sets(tmp_path / "avg.safetensors")["train"]
    assert len(names) == 20 and ay.tolist() == [c for c in range(10) for _ in range(2)]
    sirens = train[train["class"] == "siren"]
    a, b = choose_pairs(sirens, 2, 4)[0]  # what interpolate would pair for this class
    assert names[16] == f"siren/{a}+{b}"
    row = {clip: i for i, clip in enumerate(train["id"])}
    torch.testing.assert_close(ax[16], (x[row[a]] + x[row[b]]) / 2)


def test_scoring_and_confidence_selection(tmp_path):
    torch.manual_seed(0)
    model = SoundCNN(10, CLASSIFIER["widths"], CLASSIFIER["hidden"])
    save_tensors(tmp_path / "baseline.safetensors", model.state_dict())
    labels = torch.tensor([c for c in range(10) for _ in range(4)])
    ids = [f"{CLASSES[c]}/{CLASSES[c]}-{k:05d}.wav" for c in range(10) for k in range(4)]
    save_feature_sets(tmp_path / "generated.safetensors", {"train": (torch.rand(40, 1, 64, 44), labels, ids)})
    for c in CLASSES:
        (tmp_path / c).mkdir()
        pd.DataFrame(
            {
                "file": [f"{c}-{k:05d}.wav" for k in range(4)],
                "class": c,
                "source_a": "a",
                "source_b": "b",
                "fsID_a": 1,
                "fsID_b": 2,
                "alpha": 0.5,
            }
        ).to_csv(tmp_path / c / "pairs.csv", index=False)
    steps.score_generated(
        str(tmp_path / "generated.safetensors"),
        str(tmp_path / "baseline.safetensors"),
        CLASSIFIER,
        str(tmp_path / "scores.csv"),
    )
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores["clip"]) == ids and scores["confidence"].between(0, 1).all()
    steps.select_generated(
        str(tmp_path / "generated.safetensors"),
        str(tmp_path / "scores.csv"),
        [str(tmp_path / c) for c in CLASSES],
        0.5,
        str(tmp_path / "kept.safetensors"),
        str(tmp_path / "pairs.csv"),
    )
    kx, ky, kept_ids = load_feature_sets(tmp_path / "kept.safetensors")["train"]
    assert len(kept_ids) == 20 and (torch.bincount(ky, minlength=10) == 2).all()
    table = pd.read_csv(tmp_path / "pairs.csv")
    assert {"source_a", "confidence", "kept", "predicted"} <= set(table.columns) and table["kept"].sum() == 20
    for _, group in table.groupby("class"):  # the kept ones are the most confident of their class
        assert group.loc[group["kept"], "confidence"].min() >= group.loc[~group["kept"], "confidence"].max()


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
        inputs = [str(tmp_path / "manifest.csv"), str(tmp_path / "split.json"), [str(generated)]]
        steps.plot_examples(*inputs, str(model_dir), str(tmp_path / "examples.png"))

    plot(tiny_pipeline)
    assert set(drawn["real"]) == set(drawn["fake"]) == {"siren"}
    assert drawn["fake"]["siren"].shape[-2:] == (TINY_MEL.y_res, TINY_MEL.x_res)  # the config's demo mel is 32 x 32
    with pytest.raises(FileNotFoundError, match="mel_config.json"):
        plot(tmp_path)


def test_round_trip_features_are_the_pair_sources_through_the_mel_image(tiny_dataset, tiny_pipeline, tmp_path):
    manifest = tiny_dataset[1]
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    split = make_split(manifest, "fold1", PROTOCOL)
    save_split(split, tmp_path / "split.json")
    features = {"sample_rate": 22050, "num_samples": 22050, "n_fft": 1024, "hop_length": 512, "n_mels": 16}
    inputs = (str(tmp_path / "manifest.csv"), str(tmp_path / "split.json"), str(tiny_pipeline))
    steps.features_round_trip(*inputs, {"per_class": 2, "seed": 4}, features, str(tmp_path / "round_trip.safetensors"))
    x, y, names = load_feature_sets(tmp_path / "round_trip.safetensors")["train"]
    assert x.shape == (20, 1, 16, 44) and y.tolist() == [c for c in range(10) for _ in range(2)]
    train = manifest[manifest["id"].isin(split["train"])]
    drawn = {clip for pair in choose_pairs(train[train["class"] == "siren"], 2, 4) for clip in pair}
    assert {name.split("/")[1] for name in names[16:18]} <= drawn and names[16].startswith("siren/")
    source = load_mono(train.set_index("id").loc[names[16][6:], "path"], 22050)
    real = FeatureExtractor(FeatureSpec(**features)).from_audio(fit_length(source, TINY_MEL.slice_samples))
    assert not torch.allclose(x[16], real)  # the clip went through the image and Griffin-Lim
    assert float(x[16].sum()) == pytest.approx(float(real.sum()), rel=0.3)  # at the source's loudness
