import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import TINY_MEL, TINY_UNET, save_latent_pipeline

from diffaug.diffusion import (
    DiffusionSettings,
    load_pipeline,
    mel_spec_of,
    save_pipeline,
    saved_mel_spec,
    train_diffusion,
    training_images,
)


def test_training_reduces_the_loss_and_saves_a_loadable_pipeline(tiny_dataset, tmp_path):
    images = training_images(tiny_dataset[1]["path"].head(16).tolist(), TINY_MEL, max_slices=2)
    assert images.shape[1:] == (1, 16, 16) and images.min() >= -1 and images.max() <= 1
    settings = {
        "seed": 0,
        "unet": TINY_UNET,
        "num_train_timesteps": 1000,
        "learning_rate": 3e-3,
        "steps": 60,
        "batch_size": 8,
    }
    unet, scheduler, losses = train_diffusion(images, TINY_MEL, DiffusionSettings.from_config(settings))
    assert sum(losses[-10:]) < 0.7 * sum(losses[:10])
    save_pipeline(tmp_path / "model", unet, scheduler, TINY_MEL, {"loss": losses})
    assert json.loads((tmp_path / "model" / "training.json").read_text())["loss"] == losses
    pipeline = load_pipeline(tmp_path / "model")
    assert mel_spec_of(pipeline) == TINY_MEL
    x = torch.zeros(1, 1, 16, 16)
    torch.testing.assert_close(pipeline.unet(x, 10).sample, unet(x, 10).sample)


def test_pipeline_folder_loads_with_both_libraries(tiny_pipeline):
    from audiodiffusion import AudioDiffusion
    from diffusers import AudioDiffusionPipeline

    pipeline = AudioDiffusionPipeline.from_pretrained(str(tiny_pipeline))
    assert pipeline.mel.config.x_res == 16 and pipeline.vqvae is None
    generator = AudioDiffusion(model_id=str(tiny_pipeline), cuda=False, progress_bar=None)
    assert generator.pipe.unet.config.sample_size == [16, 16]
    image, (rate, audio) = generator.generate_spectrogram_and_audio(steps=2, generator=torch.Generator().manual_seed(0))
    assert rate == 22050 and image.size == (16, 16) and len(audio) > 0


def test_a_pretrained_pipeline_folder_replaces_training(tiny_pipeline, tmp_path):
    from diffaug.steps import import_pretrained

    import_pretrained(pipeline=str(tiny_pipeline), output=str(tmp_path / "copy"))
    original, copy = load_pipeline(tiny_pipeline), load_pipeline(tmp_path / "copy")
    assert mel_spec_of(copy) == mel_spec_of(original)
    x = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(copy.unet(x, 5).sample, original.unet(x, 5).sample)


def test_a_pretrained_pipeline_with_unusable_mel_settings_is_named(tiny_pipeline, tmp_path):
    from diffaug.steps import import_pretrained

    folder = tmp_path / "bad"
    shutil.copytree(tiny_pipeline, folder)
    mel_config = folder / "mel" / "mel_config.json"
    mel_config.write_text(json.dumps(json.loads(mel_config.read_text()) | {"hop_length": 1000}))
    expected = rf"pretrained pipeline {re.escape(str(folder))}: .*hop_length 1000 must be at most half"
    with pytest.raises(ValueError, match=expected):
        import_pretrained(pipeline=str(folder), output=str(tmp_path / "copy"))
    assert not (tmp_path / "copy").exists()


def _interpolate_siren(manifest, tmp_path, model, count, out, step="interpolate"):
    """Run the interpolate (or reconstruct) step for class siren of split fold1 with `model`; returns
    the output folder."""
    from diffaug import steps
    from diffaug.splits import make_split, save_split
    from diffaug.steps import pairs

    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    protocol = {"kind": "kfold", "test_folds": [1], "test_fraction": 0.1, "val_fraction": 0.2, "seed": 0}
    save_split(make_split(manifest, "fold1", protocol), tmp_path / "split.json")
    settings = {
        "pairs_per_class": count,
        "steps": 2,
        "alpha": 0.5,
        "batch_size": 2,
        "device": "cpu",
        "precision": "fp32",
        "seed": 0,
    }
    pairs(
        manifest_csv=str(tmp_path / "manifest.csv"),
        split_json=str(tmp_path / "split.json"),
        settings=settings,
        generated_set=0,
        output=str(tmp_path / "pairs.csv"),
    )
    getattr(steps, step)(
        manifest_csv=str(tmp_path / "manifest.csv"),
        pairs_csv=str(tmp_path / "pairs.csv"),
        model_dir=str(model),
        class_dirs=[str(tmp_path / out / "siren")],
        generate=settings,
        generated_set=0,
        output_rate=22050,
    )
    return tmp_path / out / "siren"


def test_a_pretrained_latent_pipeline_generates_through_its_autoencoder(paired_dataset, tmp_path):
    from diffaug.diffusion import is_pretrained
    from diffaug.steps import import_pretrained

    save_latent_pipeline(tmp_path / "hub")
    import_pretrained(pipeline=str(tmp_path / "hub"), output=str(tmp_path / "model"))
    pipeline = load_pipeline(tmp_path / "model")
    assert pipeline.vqvae is not None and mel_spec_of(pipeline) == TINY_MEL
    assert is_pretrained(tmp_path / "model") and not is_pretrained(tmp_path / "hub")
    out = _interpolate_siren(paired_dataset[1], tmp_path, tmp_path / "model", 3, "generated")
    assert len(list(out.glob("*.wav"))) == 3


def test_a_reconstruction_decodes_each_pairs_first_clip_alone(tiny_pipeline, paired_dataset, tmp_path):
    import soundfile as sf

    mixed = _interpolate_siren(paired_dataset[1], tmp_path, tiny_pipeline, 4, "generated")
    alone = _interpolate_siren(paired_dataset[1], tmp_path, tiny_pipeline, 4, "reconstructed", step="reconstruct")
    drawn = pd.read_csv(tmp_path / "pairs.csv").set_index("pair")
    written = pd.read_csv(alone / "pairs.csv")
    assert list(written["file"]) == [f"{pair}.wav" for pair in drawn[drawn["class"] == "siren"].index]
    assert (written["source_b"] == written["source_a"]).all() and (written["alpha"] == 0).all()
    assert list(written["source_a"]) == list(drawn.loc[written["file"].str.removesuffix(".wav"), "source_a"])
    for file in written["file"]:  # as long as the interpolated clip, and another sound
        a, b = sf.read(alone / file)[0], sf.read(mixed / file)[0]
        assert a.shape == b.shape and not np.allclose(a, b, atol=1e-3)


def test_pretrained_inputs_are_rounded_to_8_bits(tiny_pipeline, paired_dataset, tmp_path, monkeypatch):
    from diffaug import generate
    from diffaug.steps import import_pretrained

    seen = []
    original = generate.MelImager.audio_to_image
    monkeypatch.setattr(
        generate.MelImager,
        "audio_to_image",
        lambda self, audio, quantize=False: seen.append(quantize) or original(self, audio, quantize),
    )
    import_pretrained(pipeline=str(tiny_pipeline), output=str(tmp_path / "model"))
    for model, expected in ((tmp_path / "model", True), (tiny_pipeline, False)):
        seen.clear()
        _interpolate_siren(paired_dataset[1], tmp_path, model, 1, f"out{expected}")
        assert seen and all(q is expected for q in seen)


def test_a_pipeline_folders_mel_settings_read_without_loading_it(tiny_pipeline, tmp_path):
    assert saved_mel_spec(tiny_pipeline) == TINY_MEL == mel_spec_of(load_pipeline(tiny_pipeline))
    with pytest.raises(FileNotFoundError, match="not an audio-diffusion pipeline folder"):
        saved_mel_spec(tmp_path)


TRAINING = {
    "seed": 0,
    "unet": TINY_UNET,
    "num_train_timesteps": 1000,
    "learning_rate": 3e-3,
    "steps": 12,
    "batch_size": 4,
}


def _parameters(unet):
    return torch.cat([p.detach().flatten() for p in unet.parameters()])


def test_ema_weights_are_saved_instead_of_the_last_ones():
    images = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    last, averaged, capped = (
        _parameters(train_diffusion(images, TINY_MEL, DiffusionSettings.from_config(TRAINING | ema))[0])
        for ema in ({}, {"ema_decay": 0.9}, {"ema_decay": 1e-9})
    )
    torch.testing.assert_close(capped, last)  # a decay capped near 0 averages nothing
    assert (averaged - last).abs().max() > 1e-4


def _split_files(manifest, tmp_path):
    from diffaug.splits import make_split, save_split

    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    protocol = {"kind": "kfold", "test_folds": [1], "test_fraction": 0.1, "val_fraction": 0.2, "seed": 0}
    split = make_split(manifest, "fold1", protocol)
    save_split(split, tmp_path / "split.json")
    return str(tmp_path / "manifest.csv"), str(tmp_path / "split.json"), split


def test_init_from_fine_tunes_the_pipelines_unet_in_its_mel_settings(manifest, tiny_pipeline, tmp_path):
    from diffaug import steps

    manifest_csv, split_json = _split_files(manifest, tmp_path)[:2]
    other_mel = {**TINY_MEL.__dict__, "x_res": 8, "y_res": 8}
    settings = TRAINING | {"init_from": "some/hub-id", "mel": other_mel, "max_slices": 1, "learning_rate": 1e-9}
    settings["unet"] = {"block_out_channels": [4], "layers_per_block": 1, "norm_num_groups": 4}
    steps.train_diffusion(
        manifest_csv=manifest_csv,
        split_json=split_json,
        diffusion=settings,
        output=str(tmp_path / "tuned"),
        init=str(tiny_pipeline),
    )
    tuned, start = load_pipeline(tmp_path / "tuned"), load_pipeline(tiny_pipeline)
    assert saved_mel_spec(tmp_path / "tuned") == TINY_MEL  # the pipeline's, not diffusion.mel
    assert tuned.unet.config.block_out_channels == start.unet.config.block_out_channels
    torch.testing.assert_close(_parameters(tuned.unet), _parameters(start.unet), atol=1e-5, rtol=0)
    record = json.loads((tmp_path / "tuned" / "training.json").read_text())
    assert record["init_from"] == "some/hub-id" and "pretrained" not in record  # generation uses float images
    assert record["clips"] == len(json.loads((tmp_path / "split.json").read_text())["train"])


def test_a_latent_pipeline_cannot_be_fine_tuned(manifest, tmp_path):
    from diffaug import steps

    save_latent_pipeline(tmp_path / "latent")
    settings = TRAINING | {"init_from": "latent-id", "mel": TINY_MEL.__dict__, "max_slices": 1}
    manifest_csv, split_json = _split_files(manifest, tmp_path)[:2]
    with pytest.raises(ValueError, match="init_from latent-id: a latent pipeline .* diffusion.pretrained"):
        steps.train_diffusion(
            manifest_csv=manifest_csv,
            split_json=split_json,
            diffusion=settings,
            output=str(tmp_path / "out"),
            init=str(tmp_path / "latent"),
        )


def test_an_imported_pipeline_gets_a_ddim_scheduler(tiny_pipeline, tmp_path):
    from diffusers import DDIMScheduler, DDPMScheduler

    from diffaug.steps import import_pretrained

    shutil.copytree(tiny_pipeline, tmp_path / "ddpm")
    pipeline = load_pipeline(tmp_path / "ddpm")
    save_pipeline(tmp_path / "ddpm", pipeline.unet, DDPMScheduler(num_train_timesteps=500), TINY_MEL)
    assert isinstance(load_pipeline(tmp_path / "ddpm").scheduler, DDPMScheduler)
    import_pretrained(pipeline=str(tmp_path / "ddpm"), output=str(tmp_path / "copy"))
    scheduler = load_pipeline(tmp_path / "copy").scheduler
    assert isinstance(scheduler, DDIMScheduler) and scheduler.config.num_train_timesteps == 500
