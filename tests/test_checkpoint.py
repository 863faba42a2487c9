"""Training interrupted right after a checkpoint resumes to exactly the uninterrupted result."""

from types import SimpleNamespace

import pytest
import torch
from helpers import TINY_MEL, TINY_UNET

import diffaug.diffusion
from diffaug.checkpoint import Checkpoint, fingerprint
from diffaug.classifier import ClassifierSettings, spec_augment, train_classifier
from diffaug.diffusion import DiffusionSettings, train_diffusion


class Killed(Exception):
    pass


def _interrupt_after(monkeypatch, saves: int):
    """Make the n-th checkpoint save the last thing a job does, as if it was killed then."""
    original, calls = Checkpoint.save, []

    def save(self, tensors, state):
        original(self, tensors, state)
        calls.append(1)
        if len(calls) == saves:
            raise Killed

    monkeypatch.setattr(Checkpoint, "save", save)
    return lambda: monkeypatch.setattr(Checkpoint, "save", original)


def _blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    return torch.rand(n, 1, 16, 16, generator=g) + y.view(-1, 1, 1, 1) * 0.3, y


@pytest.mark.parametrize(
    "network",
    [{}, {"model": "sb_cnn", "sb_cnn": {"widths": [4, 8, 8], "hidden": 8}, "normalise": "per_band"}],
    ids=["published_cnn", "sb_cnn_per_band"],
)
def test_classifier_resumes_to_the_same_weights(tmp_path, monkeypatch, network):
    settings = {"widths": [4, 8, 8], "hidden": 8, "epochs": 5, "batch_size": 16, "learning_rate": 1e-2} | network
    augment = spec_augment({"freq_masks": 1, "freq_width": 3, "time_masks": 1, "time_width": 3})
    args = (_blobs(64, 0), _blobs(24, 1), _blobs(24, 2), ClassifierSettings.from_config(settings), 0, 3, augment)
    whole, history, chosen = train_classifier(*args)

    checkpoint = Checkpoint(tmp_path / "checkpoint.safetensors", fingerprint(settings))
    restore = _interrupt_after(monkeypatch, saves=2)
    with pytest.raises(Killed):
        train_classifier(*args, checkpoint=checkpoint)
    restore()
    torch.manual_seed(123)  # a new process: the global generator starts elsewhere
    resumed, resumed_history, resumed_chosen = train_classifier(*args, checkpoint=checkpoint)
    assert resumed_history == history and resumed_chosen == chosen
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


@pytest.mark.parametrize(
    "ema_decay, classes", [(None, 0), (0.99, 0), (None, 3)], ids=["last", "ema", "class_conditional"]
)
def test_diffusion_training_resumes_to_the_same_weights(tmp_path, monkeypatch, ema_decay, classes):
    images = torch.rand(12, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    labelled = {"labels": torch.arange(12) % classes, "classes": classes} if classes else {}
    settings = {
        "seed": 0,
        "unet": TINY_UNET,
        "num_train_timesteps": 1000,
        "learning_rate": 1e-3,
        "steps": 20,
        "batch_size": 4,
        "ema_decay": ema_decay,
    }
    whole, _, losses = train_diffusion(images, TINY_MEL, DiffusionSettings.from_config(settings), **labelled)

    checkpoint = Checkpoint(tmp_path / "model.checkpoint.safetensors", fingerprint(settings, images))
    # saves are skipped where they would take over a tenth of the time, which on a busy machine can
    # leave fewer than three in 20 steps: a clock that never moves saves every 5 % of the steps
    monkeypatch.setattr(diffaug.diffusion, "time", SimpleNamespace(perf_counter=lambda: 0.0))
    restore = _interrupt_after(monkeypatch, saves=3)
    with pytest.raises(Killed):
        train_diffusion(images, TINY_MEL, DiffusionSettings.from_config(settings), checkpoint=checkpoint, **labelled)
    restore()
    resumed, _, resumed_losses = train_diffusion(
        images, TINY_MEL, DiffusionSettings.from_config(settings), checkpoint=checkpoint, **labelled
    )
    assert resumed_losses == losses
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_a_checkpoint_of_other_settings_is_ignored(tmp_path):
    Checkpoint(tmp_path / "c.safetensors", "abc").save({"x": torch.zeros(1)}, {"step": 3})
    assert Checkpoint(tmp_path / "c.safetensors", "abc").load()[1] == {"step": 3}
    assert Checkpoint(tmp_path / "c.safetensors", "other").load() is None
    (tmp_path / "c.safetensors").write_bytes(b"garbage")
    assert Checkpoint(tmp_path / "c.safetensors", "abc").load() is None
