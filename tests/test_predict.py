"""`diffaug predict`: a trained classifier folder labels new audio files as its run labelled its test clips."""

import io
import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF
import yaml
from helpers import CLASSIFIER, PROTOCOL, ROOT, SB_CNN, class_list_file

from diffaug import steps
from diffaug.audio import fit_length, load_mono
from diffaug.classifier import NetworkSettings, SoundCNN, build_classifier, predict_proba, probabilities, shaped
from diffaug.cli import main
from diffaug.features import FeatureSpec, select_parts
from diffaug.files import load_tensors, save_tensors, write_json
from diffaug.predict import TrainedClassifier, describe_model
from diffaug.schema import SCHEMA, with_defaults
from diffaug.splits import load_split
from diffaug.synthetic import CLASSES

NETWORK = CLASSIFIER | SB_CNN | {"normalise": "per_band", "epochs": 3, "device": "cpu"}
FEATURES = {"n_mels": 16, "num_samples": 33075, "log": True}
"""An SB-CNN with per-band statistics on 1.5 s log-mel inputs: every part of a model folder in use."""


def _train(folder, manifest, classifier=NETWORK, features=FEATURES):
    """A classifier run through the workflow's steps (features, split, train) on the tiny dataset;
    returns its model folder."""
    manifest.to_csv(folder / "manifest.csv", index=False)
    steps.features(
        manifest_csv=str(folder / "manifest.csv"), features=features, output=str(folder / "real.safetensors")
    )
    steps.split(
        manifest_csv=str(folder / "manifest.csv"), name="fold1", protocol=PROTOCOL, output=str(folder / "split.json")
    )
    model_dir = folder / "models" / "fold1" / "baseline" / "seed0"
    steps.train_classifiers(
        classes_txt=class_list_file(folder),
        real=str(folder / "real.safetensors"),
        split_json=str(folder / "split.json"),
        generated=[],
        arm="baseline",
        seeds=[0],
        generated_sets=[None],
        split_name="fold1",
        classifier=classifier,
        specaugment=None,
        features=features,
        weights=[str(model_dir / "model.safetensors")],
        metrics=[str(model_dir / "metrics.json")],
        descriptions=[str(model_dir / "model.json")],
    )
    return model_dir


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    """(run folder, model folder) of a run."""
    folder = tmp_path_factory.mktemp("run")
    return folder, _train(folder, tiny_dataset[1])


def _predict(capsys, *args):
    """(exit status, stdout, stderr) of `diffaug predict ARGS`."""
    capsys.readouterr()  # what came before: training's progress bars
    status = main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def _test_clips(folder, manifest):
    test = load_split(folder / "split.json")["test"]
    return manifest.set_index("id").loc[test]


def test_predict_agrees_with_the_runs_test_accuracy(trained, tiny_dataset, tmp_path, capsys):
    """The model folder alone, copied away from its run, labels the run's test clips (every rate,
    width and channel count of the dataset) as the run scored them."""
    folder, model_dir = trained
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("model.json", "model.safetensors"):
        shutil.copy(model_dir / name, alone)
    clips = _test_clips(folder, tiny_dataset[1])
    status, out, err = _predict(capsys, alone, *clips["path"], "--csv")
    assert status == 0 and err == ""
    table = pd.read_csv(io.StringIO(out))
    assert list(table.columns) == ["file", "predicted", *CLASSES] and list(table["file"]) == list(clips["path"])
    metrics = json.loads((model_dir / "metrics.json").read_text())
    correct = int((table["predicted"] == clips["class"].to_numpy()).sum())
    assert correct == round(metrics["test_accuracy"] * len(clips)) and correct > 0
    x = select_parts(folder / "real.safetensors", load_split(folder / "split.json"), ["test"])["test"][0]
    run = TrainedClassifier.load(model_dir)
    expected = probabilities(run.model, x, run.network.precision, "cpu")  # from the run's own features
    torch.testing.assert_close(
        torch.tensor(table[list(CLASSES)].to_numpy(), dtype=torch.float32), expected, atol=1e-6, rtol=0
    )
    assert (table["predicted"] == [CLASSES[i] for i in expected.argmax(1)]).all()


def test_the_model_folder_describes_features_network_and_classes(trained):
    described = json.loads((trained[1] / "model.json").read_text())
    assert described["classes"] == list(CLASSES)
    assert described["features"] == FeatureSpec(**FEATURES).__dict__  # every setting, defaults included
    assert described["classifier"] == {
        "model": "sb_cnn",
        "normalise": "per_band",
        "precision": "fp32",
        "sb_cnn": with_defaults("classifier.sb_cnn", SB_CNN["sb_cnn"]),
    }
    assert load_tensors(trained[1] / "model.safetensors")[0]["norm.mean"].shape == (1, 1, 16, 1)
    metrics = json.loads((trained[1] / "metrics.json").read_text())
    assert metrics["model"] == "sb_cnn" and metrics["classes"] == list(CLASSES)


def test_a_published_cnn_folder_rebuilds_its_network(tmp_path):
    torch.manual_seed(0)
    model = build_classifier(NetworkSettings.from_config(CLASSIFIER))
    save_tensors(tmp_path / "model.safetensors", model.state_dict())
    write_json(
        tmp_path / "model.json", describe_model(NetworkSettings.from_config(CLASSIFIER), {"n_mels": 16}, CLASSES)
    )
    described = json.loads((tmp_path / "model.json").read_text())
    network = {key: CLASSIFIER[key] for key in ("widths", "hidden")}
    assert described["classifier"] == {"model": "published_cnn", "normalise": "none", "precision": "fp32"} | network
    assert described["features"] == FeatureSpec(n_mels=16).__dict__
    run = TrainedClassifier.load(tmp_path)
    x = torch.rand(3, 1, 16, 44)
    assert isinstance(run.model, SoundCNN) and not run.extractor.spec.log
    torch.testing.assert_close(predict_proba(run.model, x), predict_proba(model, x))


def test_a_fifty_class_model_labels_files_with_its_own_classes(tmp_path, capsys):
    from layout_data import tone

    classes = [f"sound_{k:02d}" for k in range(50)]
    network = NetworkSettings.from_config(CLASSIFIER)
    torch.manual_seed(0)
    save_tensors(tmp_path / "model.safetensors", build_classifier(network, len(classes)).state_dict())
    write_json(tmp_path / "model.json", describe_model(network, {"n_mels": 16}, classes))
    files = [_write(tmp_path / f"{k}.wav", tone(k, 1.0, 16000, 1, k).T, 16000, "PCM_16") for k in range(3)]
    status, out, err = _predict(capsys, tmp_path, *files, "--format", "csv")
    assert status == 0, err
    table = pd.read_csv(io.StringIO(out))
    assert list(table.columns) == ["file", "predicted", *classes] and len(table) == 3
    np.testing.assert_allclose(table[classes].sum(axis=1), 1, atol=1e-4)
    assert (table["predicted"] == [classes[i] for i in table[classes].to_numpy().argmax(1)]).all()


def _write(path, audio, rate, subtype):
    sf.write(str(path), np.asarray(audio, dtype=np.float32).T, rate, subtype=subtype)
    return path


def test_any_rate_width_and_channel_count_is_labelled_as_the_same_sound(trained, tiny_dataset, tmp_path, capsys):
    clips = _test_clips(trained[0], tiny_dataset[1])
    first = clips.iloc[0]
    clip = fit_length(load_mono(first["path"], 22050), 22050) * 0.5
    other = fit_length(load_mono(clips[clips["class"] != first["class"]]["path"].iloc[0], 22050), 22050) * 0.5
    files = {
        "mono_float": _write(tmp_path / "mono_float.wav", clip, 22050, "FLOAT"),
        "stereo_float": _write(tmp_path / "stereo_float.wav", torch.stack([clip, clip]), 22050, "FLOAT"),
        "mono_int16": _write(tmp_path / "mono_int16.wav", clip, 22050, "PCM_16"),
        "stereo_44100_24bit": _write(
            tmp_path / "stereo_44100.flac", AF.resample(torch.stack([clip, clip]), 22050, 44100), 44100, "PCM_24"
        ),
        "stereo_mixed": _write(tmp_path / "stereo_mixed.wav", torch.stack([clip, other]), 22050, "FLOAT"),
        "mix": _write(tmp_path / "mix.wav", (clip + other) / 2, 22050, "FLOAT"),
    }
    status, out, err = _predict(capsys, trained[1], *files.values(), "--format", "csv")
    assert status == 0, err
    proba = pd.read_csv(io.StringIO(out)).set_index("file")[list(CLASSES)]
    p = {name: proba.loc[str(path)].to_numpy() for name, path in files.items()}
    np.testing.assert_allclose(p["stereo_float"], p["mono_float"], atol=1e-6)  # channels averaged
    np.testing.assert_allclose(p["stereo_mixed"], p["mix"], atol=1e-6)
    np.testing.assert_allclose(p["mono_int16"], p["mono_float"], atol=5e-4)  # 16-bit rounding only
    np.testing.assert_allclose(p["stereo_44100_24bit"], p["mono_float"], atol=2e-3)  # resampled back to 22,050 Hz
    assert not np.allclose(p["mix"], p["mono_float"], atol=1e-2)  # the comparisons can tell sounds apart


def test_unusable_files_are_named_and_the_others_still_labelled(trained, tiny_dataset, tmp_path, capsys):
    good = list(_test_clips(trained[0], tiny_dataset[1])["path"].iloc[:2])
    (tmp_path / "text.wav").write_text("not audio")
    silent = _write(tmp_path / "silent.wav", np.zeros(22050), 22050, "PCM_16")
    missing = tmp_path / "missing.wav"
    status, out, err = _predict(capsys, trained[1], good[0], tmp_path / "text.wav", silent, missing, good[1])
    assert status == 1 and "Traceback" not in err
    assert f"{tmp_path / 'text.wav'}: unreadable audio" in err
    assert f"{silent}: silent (every sample is zero)" in err and f"{missing}: no such file" in err
    assert "3 of 5 file(s) not labelled" in err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["file", "predicted", CLASSES[0]] and len(lines) == 3
    assert lines[1].startswith(good[0]) and lines[2].startswith(good[1]) and "text.wav" not in out


def _broken_folder(trained, tmp_path, problem):
    folder = tmp_path / problem
    shutil.copytree(trained[1], folder)
    described = json.loads((folder / "model.json").read_text())
    if problem == "no_description":
        (folder / "model.json").unlink()
    elif problem == "other_network":
        (folder / "model.json").write_text(
            json.dumps(described | {"classifier": {**described["classifier"], "normalise": "none"}})
        )
    elif problem == "no_features":
        (folder / "model.json").write_text(json.dumps({k: v for k, v in described.items() if k != "features"}))
    elif problem == "pickled_weights":
        torch.save({"weight": torch.zeros(1)}, folder / "model.safetensors")
    return folder


@pytest.mark.parametrize(
    "problem, message",
    [
        ("no_description", "model.json: missing; a classifier folder holds model.json"),
        ("other_network", "model.safetensors: does not fit the network that .*model.json describes"),
        ("no_features", "model.json: \\(top level\\): 'features' is missing"),
        ("pickled_weights", "model.safetensors: not a safetensors file"),
    ],
)
def test_an_unusable_model_folder_is_named_without_a_traceback(trained, tmp_path, capsys, problem, message):
    folder = _broken_folder(trained, tmp_path, problem)
    status, out, err = _predict(capsys, folder, trained[0] / "manifest.csv")
    assert status == 2 and out == "" and "Traceback" not in err
    assert err.startswith(f"diffaug predict: error: {folder}") and re.search(message, err)


def test_the_diffaug_command_runs_as_a_module_and_is_declared(trained, tiny_dataset):
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"diffaug": "diffaug.cli:main"}
    good = _test_clips(trained[0], tiny_dataset[1])["path"].iloc[0]
    command = [sys.executable, "-m", "diffaug", "predict", str(trained[1]), good, str(trained[0] / "split.json")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "split.json: unreadable audio" in result.stderr and result.stdout.splitlines()[1].startswith(good)


SMALL_INPUT = {"n_mels": 16}


def _model_folder(folder, classifier=CLASSIFIER, features=SMALL_INPUT, classes=CLASSES):
    """A classifier folder of freshly initialised weights, made without training: (folder, its model.json)."""
    network = NetworkSettings.from_config(classifier)
    torch.manual_seed(0)
    model = shaped(build_classifier(network, len(classes)), torch.zeros(1, *FeatureSpec(**features).shape))
    save_tensors(folder / "model.safetensors", model.state_dict())
    described = describe_model(network, features, classes)
    write_json(folder / "model.json", described)
    return folder, described


def test_every_network_kind_describes_itself_as_the_model_schema_expects(tmp_path):
    """What train_classifier writes for each model loads back; the model schema's features are FeatureSpec's."""
    sb_cnn_2017 = CLASSIFIER | {"model": "sb_cnn_2017", "sb_cnn_2017": {"widths": [4, 4, 8], "hidden": 8}}
    for name, classifier in {"published": CLASSIFIER, "sb_cnn": CLASSIFIER | SB_CNN, "2017": sb_cnn_2017}.items():
        (tmp_path / name).mkdir()
        folder, described = _model_folder(tmp_path / name, classifier, {"n_mels": 64, "num_samples": 66150})
        assert TrainedClassifier.load(folder).network.description() == described["classifier"]
    config_features = yaml.safe_load(SCHEMA.read_text())["properties"]["features"]["properties"]
    assert set(config_features) == {field.name for field in fields(FeatureSpec)}


def test_the_package_ships_its_schemas():
    """An installed diffaug reads both schemas from the package (tests/test_install.py installs one)."""
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["diffaug"]
    assert {path.name for path in (ROOT / "src" / "diffaug").glob("*.schema.yaml")} <= set(shipped)
    assert "model.schema.yaml" in shipped


def _features(**changed):
    return lambda described: described | {"features": described["features"] | changed}


def _classifier(**changed):
    return lambda described: described | {"classifier": described["classifier"] | changed}


@pytest.mark.parametrize(
    "change, message",
    [
        (_features(n_mels=10_000_000), "features.n_mels: 10000000 is greater than the maximum of 512"),
        (_features(n_fft=2**30), "features.n_fft: 1073741824 is greater than the maximum of 65536"),
        (_features(num_samples=10**12), "features.num_samples: 1000000000000 is greater than the maximum of"),
        (_features(num_samples=115_200_000, hop_length=1), "features: one clip would take 115200001 frames"),
        (_features(n_mels=16.0), "features.n_mels: 16.0 is not a whole number; write 16"),
        (_features(log="yes"), "features.log: 'yes' is not a boolean; write true or false"),
        (_features(hop=512), "features: unknown key\\(s\\) hop; allowed: "),
        (_classifier(precision="fp8"), "classifier.precision: 'fp8' is not allowed; choose one of 'fp32'"),
        (_classifier(widths=["4", 4, 8]), "classifier.widths.0: '4' is not a whole number; write a whole"),
        (_classifier(widths=[10**9]), "classifier.widths.0: 1000000000 is greater than the maximum of 1024"),
        (_classifier(model="sb_cnn"), "classifier: 'sb_cnn' is missing"),
        (_classifier(sb_cnn={"widths": [4]}), "classifier: Unevaluated properties are not allowed \\('sb_cnn' was"),
        (lambda d: d | {"classes": "dog_bark"}, "classes: 'dog_bark' is not of type 'array'"),
        (lambda d: d | {"classes": ["dog", "dog"]}, "classes: \\['dog', 'dog'\\] has non-unique elements"),
        (lambda d: d | {"format": 2}, "format 2 is newer than this version of diffaug reads"),
        (lambda d: [d], "\\(top level\\): .* is not of type 'object'"),
        (lambda d: "{not json", "model.json: not JSON \\(Expecting property name"),
        (lambda d: json.dumps(_classifier(hidden=float("nan"))(d)), "model.json: not JSON \\(NaN is not a JSON number"),
        (lambda d: json.dumps(d).replace('"n_fft": 1024', '"n_fft": 1e999'), "features.n_fft: inf is not a finite"),
        (lambda d: "[" * 100_000 + "]" * 100_000, "model.json: not a classifier description \\(nested too deep"),
        (_features(n_mels=8), "its network cannot take its features, of shape \\(1, 8, 44\\)"),
    ],
)
def test_a_model_json_outside_the_schema_is_named_by_key_without_a_traceback(tmp_path, capsys, change, message):
    """model.json is checked before anything is built from it; a problem names the file and the key."""
    folder, described = _model_folder(tmp_path)
    changed = change(described)
    (folder / "model.json").write_text(changed if isinstance(changed, str) else json.dumps(changed))
    status, out, err = _predict(capsys, folder, folder / "model.json")  # not audio: unused when refused
    assert status == 2 and out == "" and "Traceback" not in err
    assert err.startswith(f"diffaug predict: error: {folder / 'model.json'}: ") and re.search(message, err), err


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, capsys, value):
    folder, _ = _model_folder(tmp_path)
    tensors = load_tensors(folder / "model.safetensors")[0]
    tensors["head.0.weight"][0, 0] = value
    save_tensors(folder / "model.safetensors", tensors)
    status, out, err = _predict(capsys, folder, folder / "model.json")
    assert status == 2 and out == "" and "Traceback" not in err
    assert f"{folder / 'model.safetensors'}: tensor head.0.weight holds NaN or infinite values" in err
