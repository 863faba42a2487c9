import json

import torch
from conftest import TINY_MEL, TINY_UNET

from diffaug.diffusion import load_pipeline, mel_spec_of, save_pipeline, train_diffusion, training_images


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
    unet, scheduler, losses = train_diffusion(images, TINY_MEL, settings)
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

    import_pretrained(str(tiny_pipeline), str(tmp_path / "copy"))
    original, copy = load_pipeline(tiny_pipeline), load_pipeline(tmp_path / "copy")
    assert mel_spec_of(copy) == mel_spec_of(original)
    x = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(copy.unet(x, 5).sample, original.unet(x, 5).sample)
