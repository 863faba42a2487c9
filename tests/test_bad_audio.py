"""Audio that is not what it claims: samples far past full scale, and a small file that would decode to
gigabytes, are refused by the manifest and by `diffaug predict` before they cost memory or turn into NaN;
features, losses and weights that are not finite stop the step that meets them, naming where."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers import TINY_MEL, TINY_UNET
from layout_data import tone, write_silent_flac

from diffaug.classifier import ClassifierSettings, NetworkSettings, build_classifier, train_classifier
from diffaug.dataset import build_manifest
from diffaug.diffusion import DiffusionSettings, train_diffusion
from diffaug.features import save_feature_sets
from diffaug.files import save_tensors, write_json
from diffaug.layouts import URBANSOUND8K_COLUMNS
from diffaug.predict import describe_model

RATE = 22050
CLASSIFIER = {"widths": [4, 8, 8], "hidden": 16, "epochs": 3, "batch_size": 8, "learning_rate": 1e-2}


def _dataset(root, files: dict):
    """An UrbanSound8K layout holding `files` (name: samples) in fold 1, class air_conditioner."""
    (root / "audio" / "fold1").mkdir(parents=True)
    (root / "metadata").mkdir()
    rows = []
    for k, (name, write) in enumerate(files.items()):
        write(root / "audio" / "fold1" / name)
        rows.append([name, k + 1, 0.0, 1.0, 1, 1, 0, "air_conditioner"])
    pd.DataFrame(rows, columns=list(URBANSOUND8K_COLUMNS)).to_csv(root / "metadata" / "UrbanSound8K.csv", index=False)
    return root


def _model_folder(folder):
    """An untrained two-class classifier folder, enough for predict to read files with."""
    network = NetworkSettings.from_config(CLASSIFIER)
    torch.manual_seed(0)
    save_tensors(folder / "model.safetensors", build_classifier(network, 2).state_dict())
    write_json(folder / "model.json", describe_model(network, {"n_mels": 16}, ["quiet", "loud"]))
    return folder


def _loud(path):
    sf.write(path, np.full(RATE, 1e30, np.float32) * np.sign(np.sin(np.arange(RATE))), RATE, subtype="FLOAT")


def _clip(path):
    sf.write(path, tone(0, 1.0, RATE, 1, 0), RATE)


def test_a_float_clip_far_beyond_full_scale_is_rejected_by_the_manifest(tmp_path):
    manifest, rejected = build_manifest(_dataset(tmp_path, {"loud.wav": _loud, "fine.wav": _clip}), "skip")
    assert manifest["id"].tolist() == ["fine.wav"]
    assert rejected["file"].tolist() == ["audio/fold1/loud.wav"]
    assert "peak of 1e+30, over 1000 times full scale" in rejected.loc[0, "reason"]


def _predict(model_dir, *files):
    """(exit status, stdout, stderr, MB of peak memory the labelling added) of `diffaug predict` in a
    fresh process, its peak measured after the imports."""
    script = (
        "import resource, sys\n"
        "from diffaug.cli import main\n"
        "import diffaug.predict\n"
        "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "before = peak()\n"
        "status = main(sys.argv[1:])\n"
        "print(f'added {peak() - before:.0f}', file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "predict", str(model_dir), *map(str, files)], capture_output=True, text=True
    )
    *err, added = done.stderr.rstrip().splitlines()
    return done.returncode, done.stdout, "\n".join(err), float(added.split()[1])


def test_predict_names_a_float_clip_far_beyond_full_scale_rather_than_printing_nan(tmp_path):
    _loud(tmp_path / "loud.wav")
    _clip(tmp_path / "fine.wav")
    status, out, err, _ = _predict(_model_folder(tmp_path), tmp_path / "loud.wav", tmp_path / "fine.wav")
    assert status == 1 and "Traceback" not in err
    assert f"{tmp_path / 'loud.wav'}: peak of 1e+30" in err and "1 of 2 file(s) not labelled" in err
    assert "nan" not in out.lower() and "fine.wav" in out and "loud.wav" not in out


@pytest.fixture(scope="module")
def ten_minute_flac(tmp_path_factory):
    """A 120 KB FLAC of 590 s of 8 channels at 96 kHz (silence compresses well): 1.8 GB as float32."""
    path = tmp_path_factory.mktemp("flac") / "long.flac"
    write_silent_flac(path, 590)
    assert path.stat().st_size < 1_000_000 and sf.info(path).duration == 590
    with sf.SoundFile(path) as handle:  # it decodes to its last sample
        handle.seek(handle.frames - 1)
        assert handle.read(dtype="int16").tolist() == [[0] * 8]
    return path


def test_the_manifest_refuses_a_long_small_file_by_its_header(ten_minute_flac, tmp_path):
    root = _dataset(tmp_path / "data", {"long.flac": lambda p: p.write_bytes(ten_minute_flac.read_bytes())})
    script = (
        "import resource, sys\n"
        "from diffaug.dataset import build_manifest\n"
        "import diffaug.audio\n"
        "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "before = peak()\n"
        "_, rejected = build_manifest(sys.argv[1], 'skip')\n"
        "print(rejected.loc[0, 'reason'])\n"
        "print(f'{peak() - before:.0f}')\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(root)], capture_output=True, text=True, check=True)
    reason, added = done.stdout.splitlines()
    assert reason == "longer than 4 s (590.00 s by its header)"
    assert float(added) < 300  # MB; decoding it whole took 3.5 GB


def test_the_manifest_refuses_a_file_of_more_samples_than_are_read_at_once_whatever_max_seconds(tmp_path):
    def eight_channels(path):  # 90 s of 8 channels at 96 kHz: 69,120,000 samples
        write_silent_flac(path, 90)

    root = _dataset(tmp_path, {"long.flac": eight_channels, "fine.wav": _clip})
    manifest, rejected = build_manifest(root, "skip", max_seconds=600)
    assert manifest["id"].tolist() == ["fine.wav"]
    assert rejected.loc[0, "reason"].startswith("69,120,000 samples (8 channels of 90.0 s at 96000 Hz) by its header")
    assert "over the 67,108,864 read at once" in rejected.loc[0, "reason"]


def test_predict_refuses_a_long_small_file_by_its_header(ten_minute_flac, tmp_path):
    status, out, err, added = _predict(_model_folder(tmp_path), ten_minute_flac)
    assert status == 1 and "Traceback" not in err and out == ""
    assert f"{ten_minute_flac}: 453,120,000 samples (8 channels of 590.0 s at 96000 Hz) by its header" in err
    assert added < 300  # MB; decoding it whole took 3.5 GB


def test_features_that_are_not_finite_are_refused_naming_their_clips(tmp_path):
    x = torch.rand(4, 1, 8, 8)
    x[1, 0, 2, 3], x[3, 0, 0, 0] = float("nan"), float("inf")
    with pytest.raises(ValueError, match=r"f.safetensors: features of 2 clip\(s\) are NaN or infinite: b.wav, d.wav"):
        save_feature_sets(
            tmp_path / "f.safetensors", {"all": (x, torch.zeros(4), ["a.wav", "b.wav", "c.wav", "d.wav"])}
        )
    assert not (tmp_path / "f.safetensors").exists()


def _blobs(n):
    x, y = torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(n)), torch.arange(n) % 2
    x[y == 1, :, :8] += 1
    return x, y


def test_a_classifier_epoch_whose_loss_is_not_finite_stops_the_run_naming_it():
    train = _blobs(32)
    train[0][5, 0, 0, 0] = float("nan")
    settings = ClassifierSettings.from_config(CLASSIFIER)
    with pytest.raises(ValueError, match=r"train classifier \(seed 4\), epoch 1: the loss is nan"):
        train_classifier(train, _blobs(8), _blobs(8), settings, seed=4, n_classes=2)


def test_a_classifier_epoch_whose_weights_overflow_stops_the_run_naming_them():
    """Inputs of 1e25 keep the loss finite under batch norm, but its running variance overflows."""
    x, y = _blobs(32)
    x[3] = 1e25
    settings = ClassifierSettings.from_config(CLASSIFIER | {"model": "sb_cnn", "sb_cnn": {"widths": [4, 8, 8]}})
    with pytest.raises(ValueError, match=r"seed 0\), epoch 1: weights are NaN or infinite \(features.1.running_var"):
        train_classifier((x, y), _blobs(8), _blobs(8), settings, seed=0, n_classes=2)


def test_diffusion_training_stops_at_the_step_whose_loss_is_not_finite():
    images = torch.rand(8, 1, 16, 16) * 2 - 1
    images[3] = float("nan")
    settings = DiffusionSettings.from_config(
        {"seed": 0, "unet": TINY_UNET, "num_train_timesteps": 100, "learning_rate": 1e-3, "steps": 6, "batch_size": 8}
    )
    with pytest.raises(ValueError, match=r"train diffusion, step 1: the loss is nan"):
        train_diffusion(images, TINY_MEL, settings)
