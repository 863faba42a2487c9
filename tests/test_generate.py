import json
import os
from dataclasses import replace

import pandas as pd
import pytest
import soundfile as sf
import torch

from diffaug.diffusion import load_pipeline
from diffaug.generate import (
    GenerateSettings,
    Interpolator,
    class_pairs,
    decoding_settings,
    generate_class,
    generate_classes,
    slerp,
)
from diffaug.pairs import (
    choose_pairs,
    generated_clips,
    generated_set_of_pairs,
    generated_set_seed,
    pair_clips,
    pair_wavs,
    pairs_per_half,
    pairs_table,
)


def test_inversion_then_decoding_round_trips(tiny_pipeline):
    """A UNet blind to its input predicts the same noise at every step, so DDIM inversion is exact."""
    pipeline = load_pipeline(tiny_pipeline)
    with torch.no_grad():
        pipeline.unet.conv_in.weight.zero_()
    interpolator = Interpolator(pipeline, steps=20, device=torch.device("cpu"))
    images = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    noise = interpolator.invert(images)
    assert (noise - images).abs().mean() > 0.1  # inversion moved far from the images
    torch.testing.assert_close(interpolator.decode(noise), images, atol=1e-4, rtol=0)


def test_a_partial_strength_walks_the_clean_end_of_the_schedule(tiny_pipeline):
    pipeline = load_pipeline(tiny_pipeline)
    with torch.no_grad():
        pipeline.unet.conv_in.weight.zero_()
    passes = []
    pipeline.unet.register_forward_pre_hook(lambda module, args: passes.append(1))
    cpu = torch.device("cpu")
    full, half = Interpolator(pipeline, 20, cpu), Interpolator(pipeline, 20, cpu, strength=0.5)
    assert half.timesteps == full.timesteps[10:] and min(half.timesteps) == min(full.timesteps)
    images = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 1.6 - 0.8
    halfway = half.invert(images)
    assert len(passes) == 10
    assert (halfway - images).abs().mean() < (full.invert(images) - images).abs().mean()
    torch.testing.assert_close(half.decode(halfway), images, atol=1e-4, rtol=0)
    for strength in (0, 1.5):
        with pytest.raises(ValueError, match="strength"):
            Interpolator(pipeline, 20, cpu, strength=strength)


def test_slerp_ends_and_middle():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    # for independent Gaussian noises the midpoint keeps their norm, unlike the plain average
    assert (mid.flatten(1).norm(dim=1) / a.flatten(1).norm(dim=1)).sub(1).abs().max() < 0.3
    assert ((a + b) / 2).flatten(1).norm(dim=1).mean() < 0.8 * mid.flatten(1).norm(dim=1).mean()


def test_pairs_come_from_different_recordings(manifest):
    clips = manifest[manifest["class"] == "siren"]
    pairs = choose_pairs(clips, 20, seed=0)  # 8 clips in 4 recordings: 24 cross-recording pairs
    fsid = clips.set_index("id")["recording"]
    assert len(set(pairs)) == 20
    assert all(fsid[a] != fsid[b] for a, b in pairs)
    assert pairs == choose_pairs(clips, 20, seed=0) and pairs != choose_pairs(clips, 20, seed=1)
    with pytest.raises(ValueError, match="25 pairs asked, but only 24"):
        choose_pairs(clips, 25, seed=0)


def test_a_pairs_first_clip_is_the_one_that_came_first_less_often():
    # 24 clips of 12 recordings, 24 pairs: a first clip drawn at random gives about 15.5 distinct ones
    clips = pd.DataFrame({"id": [f"c{k:02d}" for k in range(24)], "recording": [k // 2 for k in range(24)]})
    distinct, ties = [], set()
    for seed in range(20):
        pairs, firsts = choose_pairs(clips, 24, seed=seed), dict.fromkeys(clips["id"], 0)
        for a, b in pairs:
            assert firsts[a] <= firsts[b], (seed, a, b)
            ties |= {a < b} if firsts[a] == firsts[b] else set()
            firsts[a] += 1
        distinct.append(sum(n > 0 for n in firsts.values()))
    assert sum(distinct) / len(distinct) > 18, distinct
    assert ties == {True, False}, "a tie is drawn, not broken alphabetically"


def test_pairs_table_names_each_pair_and_draws_new_pairs_per_generated_set(manifest):
    table = pairs_table(manifest, 5, generated_set_seed(0, 0))
    assert len(table) == 5 * manifest["class"].nunique() and table["pair"].is_unique
    assert (table["recording_a"] != table["recording_b"]).all()
    sirens = table[table["class"] == "siren"]
    assert list(sirens["pair"]) == [f"siren-{k:05d}" for k in range(5)]
    first = list(zip(sirens["source_a"], sirens["source_b"]))
    assert first == choose_pairs(manifest[manifest["class"] == "siren"], 5, 0)  # the first set keeps the seed
    other = pairs_table(manifest, 5, generated_set_seed(0, 1))
    assert list(zip(other["source_a"], other["source_b"])) != list(zip(table["source_a"], table["source_b"]))
    assert generated_set_seed(0, 1) != generated_set_seed(0, 2) != generated_set_seed(1, 1)


def test_pairs_split_between_the_judge_halves_as_evenly_as_they_allow():
    assert pairs_per_half((10, 10), 5) == (3, 2)
    assert pairs_per_half((1, 10), 5) == (1, 4) and pairs_per_half((10, 1), 5) == (4, 1)
    assert pairs_per_half((0, 5), 5) == (0, 5)
    with pytest.raises(ValueError, match=r"6 pairs asked, but only 5 .* within a judge's half exist \(2 and 3\)"):
        pairs_per_half((2, 3), 6)


def test_pairs_lie_within_one_half(manifest):
    train = manifest[manifest["fold"] != 1]  # 3 recordings of 2 clips per class
    halves = [[], []]
    for _, clips in train.groupby("class"):
        recordings = sorted(set(clips["recording"]))
        halves[0] += list(clips.loc[clips["recording"].isin(recordings[:2]), "id"])  # 4 pairs
        halves[1] += list(clips.loc[clips["recording"] == recordings[2], "id"])  # none: one recording
    table = pairs_table(train, 3, 0, halves)
    assert (table["half"] == 0).all() and len(table) == 30
    assert set(table["source_a"]) | set(table["source_b"]) <= set(halves[0])


def test_generate_class_writes_wavs_and_pairs(tiny_pipeline, manifest, tmp_path):
    clips = manifest[manifest["class"] == "dog_bark"]
    settings = GenerateSettings.from_config({"device": "cpu", "steps": 3, "seed": 0, "batch_size": 2, "alpha": 0.5})
    out = tmp_path / "dog_bark"
    pairs = pairs_table(clips, 5, 0)
    table = generate_class(load_pipeline(tiny_pipeline), clips, out, pairs, settings, 16000, "dog_bark")
    written = pd.read_csv(out / "pairs.csv")
    assert len(written) == 5 and list(written["file"]) == list(table["file"])
    assert list(written["file"]) == [f"{pair}.wav" for pair in pairs["pair"]]
    assert list(written["source_a"]) == list(pairs["source_a"])
    assert json.loads((out / "generation.json").read_text())["runtime"] == "cpu fp32"
    assert set(written["source_a"]) | set(written["source_b"]) <= set(clips["id"])
    assert (written["recording_a"] != written["recording_b"]).all()
    for name in written["file"]:
        data, rate = sf.read(out / name)
        assert rate == 16000 and data.ndim == 1 and len(data) > 0 and abs(data).max() <= 1
    again = tmp_path / "again"
    generate_class(load_pipeline(tiny_pipeline), clips, again, pairs, settings, 16000, "dog_bark")
    assert (out / written["file"][0]).read_bytes() == (again / written["file"][0]).read_bytes()


def test_generating_every_class_in_one_job_makes_each_as_alone_and_keeps_what_a_stopped_job_finished(
    tiny_pipeline, manifest, tmp_path, monkeypatch
):
    import diffaug.generate as generate

    names = ["dog_bark", "siren", "drilling"]
    clips = manifest[manifest["class"].isin(names)]
    pairs = pairs_table(clips, 2, 0)
    settings = GenerateSettings.from_config({"device": "cpu", "steps": 3, "seed": 0, "batch_size": 2, "alpha": 0.5})
    pipeline = load_pipeline(tiny_pipeline)
    alone = tmp_path / "alone"
    generate_class(pipeline, clips, alone, class_pairs(pairs, "siren"), settings, 16000, "siren")
    folders = [str(tmp_path / "set0" / name) for name in names]
    made, stop_after, real = [], [2], generate.generate_class

    def counted(*args):
        if len(made) == stop_after[0]:
            raise RuntimeError("stopped")
        made.append(args[6])  # the class name
        return real(*args)

    monkeypatch.setattr(generate, "generate_class", counted)
    with pytest.raises(RuntimeError, match="stopped"):
        generate_classes(pipeline, tiny_pipeline, manifest, pairs, folders, settings, 16000)
    assert made == names[:2] and not any(map(os.path.exists, folders))  # nothing in place until all are made
    made.clear()
    stop_after[0] = None
    generate_classes(pipeline, tiny_pipeline, manifest, pairs, folders, settings, 16000)
    assert made == ["drilling"]  # the two finished classes taken up as they were
    assert sorted(os.listdir(tmp_path / "set0")) == sorted(names)  # nothing left aside
    for wav in sorted(alone.glob("*.wav")):
        assert (tmp_path / "set0" / "siren" / wav.name).read_bytes() == wav.read_bytes()
    made.clear()
    generate_classes(pipeline, tiny_pipeline, manifest, pairs, folders, replace(settings, alpha=0.3), 16000)
    assert made == names  # other settings: every class made anew


def test_a_reconstruction_decodes_each_pairs_first_clip_with_itself_at_alpha_0(manifest):
    pairs = pairs_table(manifest, 3, 0)
    name = pairs["class"].iloc[0]
    mixed, alone = class_pairs(pairs, name), class_pairs(pairs, name, mix=False)
    assert set(mixed["class"]) == {name} and len(mixed) == 3 and list(alone["pair"]) == list(mixed["pair"])
    assert list(alone["source_b"]) == list(mixed["source_a"]) and list(alone["recording_b"]) == list(
        mixed["recording_a"]
    )
    clips = pair_clips(manifest, mixed)
    assert set(clips["id"]) == set(mixed["source_a"]) | set(mixed["source_b"])
    section = {"device": "cpu", "steps": 3, "seed": 4, "batch_size": 2, "alpha": 0.5}
    settings = decoding_settings(section, 0, pretrained=False)
    assert (settings.alpha, settings.seed, settings.quantize) == (0.5, 4, False)
    other = decoding_settings(section, 2, pretrained=True, mix=False)
    assert (other.alpha, other.seed, other.quantize) == (0.0, generated_set_seed(4, 2), True)


def test_a_pairs_generated_clip_lies_in_its_class_folder_named_by_the_pair(manifest, tmp_path):
    pairs = pairs_table(manifest, 2, 0)
    rows, classes, folders = pairs.to_dict("records"), sorted(set(pairs["class"])), []
    assert pair_wavs(rows, [], "interpolate") == {}
    for name, group in pairs.groupby("class"):
        folders.append(tmp_path / "set0" / name)
        folders[-1].mkdir(parents=True)
        for pair in group["pair"]:
            (folders[-1] / f"{pair}.wav").touch()
        group.assign(file=group["pair"] + ".wav")[["file", "class"]].to_csv(folders[-1] / "pairs.csv", index=False)
    first = rows[0]
    wav = tmp_path / "set0" / first["class"] / f"{first['pair']}.wav"
    assert pair_wavs(rows, folders, "interpolate")[first["pair"]] == wav
    paths, labels, ids = generated_clips(folders, classes)
    assert ids == list(pairs["pair"]) and paths[0] == wav and labels == [classes.index(c) for c in pairs["class"]]
    wav.unlink()
    with pytest.raises(FileNotFoundError, match=f"{first['pair']}.wav: the clip of pair .* missing; rerun reconstruct"):
        pair_wavs(rows, folders, "reconstruct")
    assert generated_set_of_pairs("results/pairs/fold3-n50/set2.csv") == ("fold3-n50", "2")
