"""Class conditioning: the class embedding, label dropout, guidance and sampling from noise."""

import json

import pandas as pd
import pytest
import soundfile as sf
import torch
from diffusers import DDIMScheduler
from helpers import TINY_MEL, TINY_UNET

from diffaug.arms import heard_as
from diffaug.diffusion import (
    DiffusionSettings,
    build_unet,
    class_count,
    load_pipeline,
    pipeline_classes,
    save_pipeline,
    train_diffusion,
    with_class_embedding,
)
from diffaug.generate import GenerateSettings, Interpolator, class_pairs, generate_class, generate_classes
from diffaug.pairs import pairs_table
from diffaug.synthetic import CLASSES

TRAINING = {"seed": 0, "unet": TINY_UNET, "num_train_timesteps": 1000, "learning_rate": 1e-3, "batch_size": 8}
SAMPLING = {"device": "cpu", "steps": 3, "seed": 0, "batch_size": 2, "alpha": 0.5, "mode": "sample"}


@pytest.fixture(scope="module")
def conditional_pipeline(tmp_path_factory):
    """An untrained tiny pipeline conditioned on the synthetic dataset's classes."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("conditional") / "model"
    unet = build_unet(TINY_MEL, TINY_UNET, classes=len(CLASSES))
    save_pipeline(folder, unet, DDIMScheduler(clip_sample=False), TINY_MEL, classes=CLASSES)
    return folder


def test_a_zero_class_embedding_reproduces_the_unconditional_unet():
    torch.manual_seed(0)
    unet = build_unet(TINY_MEL, TINY_UNET).eval()
    conditional = with_class_embedding(unet, 3).eval()
    assert class_count(unet) == 0 and class_count(conditional) == 3
    assert conditional.class_embedding.num_embeddings == 4  # three classes and the empty label
    x = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = unet(x, 10).sample
        for label in range(4):
            assert torch.equal(conditional(x, 10, class_labels=torch.full((4,), label)).sample, expected)


def test_a_conditional_pipeline_saves_its_classes_and_loads_in_both_libraries(conditional_pipeline, tmp_path):
    from audiodiffusion import AudioDiffusion
    from diffusers import AudioDiffusionPipeline

    assert pipeline_classes(conditional_pipeline) == list(CLASSES)
    assert class_count(load_pipeline(conditional_pipeline).unet) == len(CLASSES)
    loaded = AudioDiffusionPipeline.from_pretrained(str(conditional_pipeline))
    assert loaded.unet.config.num_class_embeds == len(CLASSES) + 1
    generator = AudioDiffusion(model_id=str(conditional_pipeline), cuda=False, progress_bar=None)
    assert generator.pipe.unet.class_embedding.num_embeddings == len(CLASSES) + 1
    with pytest.raises(ValueError, match="conditioned on 10 classes is saved with 2 names"):
        save_pipeline(tmp_path / "bad", loaded.unet, loaded.scheduler, TINY_MEL, classes=["a", "b"])
    assert not (tmp_path / "bad").exists()


def _labels_seen(unet, images, labels, dropout):
    """The class labels that each training pass gave the UNet."""
    seen = []
    unet.register_forward_pre_hook(lambda _, args, kwargs: seen.append(kwargs["class_labels"]), with_kwargs=True)
    settings = DiffusionSettings.from_config(TRAINING | {"steps": 30, "label_dropout": dropout})
    train_diffusion(images, TINY_MEL, settings, init=unet, labels=labels, classes=3)
    return torch.cat(seen)


def test_labels_are_dropped_to_the_empty_one_at_the_set_rate():
    images = torch.rand(12, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    labels = torch.arange(12) % 3
    kept = _labels_seen(build_unet(TINY_MEL, TINY_UNET, classes=3), images, labels, dropout=0.0)
    assert len(kept) == 240 and set(kept.tolist()) == {0, 1, 2}
    halved = _labels_seen(build_unet(TINY_MEL, TINY_UNET, classes=3), images, labels, dropout=0.5)
    assert 0.35 < (halved == 3).float().mean() < 0.65  # 3 is the empty label
    assert set(halved.tolist()) == {0, 1, 2, 3}


def test_fine_tuning_adds_the_class_embedding_to_an_unconditional_unet():
    images = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    start = build_unet(TINY_MEL, TINY_UNET)
    settings = DiffusionSettings.from_config(TRAINING | {"steps": 2, "learning_rate": 1e-9})
    tuned, _, _ = train_diffusion(images, TINY_MEL, settings, init=start, labels=torch.arange(6) % 2, classes=2)
    assert class_count(tuned) == 2
    with pytest.raises(ValueError, match="labelled images"):
        train_diffusion(images, TINY_MEL, settings, classes=2)


def test_guidance_mixes_the_conditional_and_empty_predictions_in_one_pass(conditional_pipeline):
    pipeline = load_pipeline(conditional_pipeline)
    unet, cpu = pipeline.unet.eval(), torch.device("cpu")
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        conditional = unet(x, 500, class_labels=torch.full((2,), 4)).sample
        empty = unet(x, 500, class_labels=torch.full((2,), len(CLASSES))).sample
    passes = []
    unet.register_forward_pre_hook(lambda module, args: passes.append(len(args[0])))
    guided = Interpolator(pipeline, 20, cpu, label=4, guidance_scale=3.0)
    torch.testing.assert_close(guided._eps(x, 500, guided=True), empty + 3 * (conditional - empty))
    torch.testing.assert_close(guided._eps(x, 500), conditional)  # inversion is conditional, unguided
    assert passes == [4, 2]  # guidance: both predictions in one batch
    plain = Interpolator(pipeline, 20, cpu, label=4)
    torch.testing.assert_close(plain._eps(x, 500, guided=True), conditional)
    with pytest.raises(ValueError, match="under a class label"):
        Interpolator(pipeline, 20, cpu)


def test_an_unconditional_pipeline_refuses_labels_and_guidance(tiny_pipeline):
    pipeline, cpu = load_pipeline(tiny_pipeline), torch.device("cpu")
    with pytest.raises(ValueError, match="under a class label, an unconditional one without"):
        Interpolator(pipeline, 20, cpu, label=0)
    with pytest.raises(ValueError, match="guidance_scale needs a class-conditional pipeline"):
        Interpolator(pipeline, 20, cpu, guidance_scale=2.0)


def test_sampling_draws_each_class_from_fresh_noise_deterministically(conditional_pipeline, manifest, tmp_path):
    names = ["dog_bark", "siren"]
    clips = manifest[manifest["class"].isin(names)]
    pairs = pairs_table(clips, 3, 0)
    settings = GenerateSettings.from_config(SAMPLING | {"guidance_scale": 2.0})
    pipeline = load_pipeline(conditional_pipeline)
    folders = [str(tmp_path / "set0" / name) for name in names]
    generate_classes(pipeline, conditional_pipeline, manifest, pairs, folders, settings, 16000)
    written = pd.read_csv(tmp_path / "set0" / "siren" / "pairs.csv")
    assert len(written) == 3 and written["alpha"].isna().all()  # nothing is mixed
    siren = [sf.read(tmp_path / "set0" / "siren" / name)[0] for name in written["file"]]
    assert all(len(clip) > 0 and abs(clip).max() <= 1 for clip in siren)
    assert not (siren[0] == siren[1]).all()  # each pair its own noise
    alone = tmp_path / "alone"
    label = CLASSES.index("siren")
    generate_class(pipeline, clips, alone, class_pairs(pairs, "siren"), settings, 16000, "siren", label)
    for name in written["file"]:  # each class drawn as it would be alone, the same every time
        assert (alone / name).read_bytes() == (tmp_path / "set0" / "siren" / name).read_bytes()
    other = tmp_path / "other_class"
    generate_class(pipeline, clips, other, class_pairs(pairs, "siren"), settings, 16000, "siren", label=0)
    assert (other / written["file"][0]).read_bytes() != (alone / written["file"][0]).read_bytes()
    record = json.loads((alone / "generation.json").read_text())
    assert record["clips"] == 3


def test_interpolation_inverts_and_decodes_under_the_class_label_deterministically(
    conditional_pipeline, manifest, tmp_path
):
    clips = manifest[manifest["class"] == "siren"]
    pairs = pairs_table(clips, 2, 0)
    label = CLASSES.index("siren")
    pipeline = load_pipeline(conditional_pipeline)
    seen = []
    pipeline.unet.register_forward_pre_hook(
        lambda _, args, kwargs: seen.append(kwargs["class_labels"].unique().tolist()), with_kwargs=True
    )
    made = {}
    for name, scale in (("guided", 2.0), ("again", 2.0), ("plain", 1.0)):
        settings = GenerateSettings.from_config(SAMPLING | {"mode": "interpolate", "guidance_scale": scale})
        generate_class(pipeline, clips, tmp_path / name, pairs, settings, 16000, "siren", label)
        made[name] = (tmp_path / name / f"{pairs['pair'].iloc[0]}.wav").read_bytes()
    assert made["guided"] == made["again"] != made["plain"]
    assert {tuple(labels) for labels in seen} == {(label,), (label, len(CLASSES))}  # guided passes add the empty one
    assert pd.read_csv(tmp_path / "plain" / "pairs.csv")["alpha"].eq(0.5).all()


def test_sampling_from_an_unconditional_pipeline_or_an_unknown_class_is_refused(
    tiny_pipeline, conditional_pipeline, manifest, tmp_path
):
    clips = manifest[manifest["class"] == "siren"]
    pairs = pairs_table(clips, 2, 0)
    settings = GenerateSettings.from_config(SAMPLING)
    with pytest.raises(ValueError, match="under a class label"):
        generate_class(load_pipeline(tiny_pipeline), clips, tmp_path / "a", pairs, settings, 16000, "siren", label=1)
    renamed = pairs.assign(**{"class": "whistle"})
    with pytest.raises(ValueError, match="conditioned on classes .* not on 'whistle'"):
        generate_classes(
            load_pipeline(conditional_pipeline),
            conditional_pipeline,
            manifest,
            renamed,
            [str(tmp_path / "whistle")],
            settings,
            16000,
        )


def test_a_conditional_fine_tune_starts_from_the_imported_unet_and_saves_the_class_names(
    manifest, tiny_pipeline, tmp_path, class_list
):
    from diffaug import steps
    from diffaug.splits import make_split, save_split

    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    protocol = {"kind": "kfold", "test_folds": [1], "test_fraction": 0.1, "val_fraction": 0.2, "seed": 0}
    save_split(make_split(manifest, "fold1", protocol), tmp_path / "split.json")
    settings = TRAINING | {"init_from": "some/hub-id", "mel": TINY_MEL.__dict__, "max_slices": 1}
    steps.train_diffusion(
        manifest_csv=str(tmp_path / "manifest.csv"),
        split_json=str(tmp_path / "split.json"),
        diffusion=settings | {"steps": 2, "learning_rate": 1e-9, "conditioning": "class"},
        output=str(tmp_path / "tuned"),
        init=str(tiny_pipeline),
        classes_txt=class_list,
    )
    tuned, start = load_pipeline(tmp_path / "tuned"), load_pipeline(tiny_pipeline)
    assert pipeline_classes(tmp_path / "tuned") == list(CLASSES) and class_count(tuned.unet) == len(CLASSES)
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # two steps at a negligible rate: the imported model, whatever the class
        expected = start.unet(x, 100).sample
        for label in (0, 9, len(CLASSES)):
            got = tuned.unet(x, 100, class_labels=torch.full((2,), label)).sample
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_in_sample_mode_the_diffusion_arms_clips_are_heard_as_samples():
    assert heard_as("diffusion", "sample") == "sample" and heard_as("diffusion", "interpolate") == "diffusion"
    assert heard_as("reconstruction", "sample") == "reconstruction"  # reconstruct inverts in every mode
