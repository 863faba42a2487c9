import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torchaudio

from diffaug.audio import load_mono
from diffaug.features import (
    FeatureExtractor,
    FeatureSpec,
    first_clips,
    load_feature_sets,
    save_feature_sets,
    select_parts,
    with_added_sets,
)


def test_shape_is_the_published_studys(tiny_dataset):
    x = FeatureExtractor().from_files(tiny_dataset[1]["path"].head(3).tolist())
    assert x.shape == (3, 1, 64, 44)
    assert FeatureSpec().shape == (1, 64, 44)


def test_features_follow_the_published_recipe(tmp_path):
    """Stereo 44.1 kHz, 2 s: mixed to mono, resampled to 22,050 Hz, cut to 1 s, power mel without log."""
    rng = np.random.default_rng(0)
    stereo = rng.uniform(-0.5, 0.5, size=(88200, 2)).astype(np.float32)
    sf.write(tmp_path / "clip.wav", stereo, 44100, subtype="FLOAT")
    mono = torchaudio.functional.resample(torch.from_numpy(stereo.mean(1)), 44100, 22050)[:22050]
    expected = torchaudio.transforms.MelSpectrogram(22050, n_fft=1024, hop_length=512, n_mels=64)(mono)
    got = FeatureExtractor().from_file(tmp_path / "clip.wav")
    torch.testing.assert_close(got[0], expected, rtol=1e-4, atol=1e-6)
    assert got.min() >= 0  # power, not decibels


def test_short_clips_are_right_padded(tmp_path):
    sf.write(tmp_path / "short.wav", np.full(2205, 0.5, np.float32), 22050)
    assert load_mono(tmp_path / "short.wav", 22050).shape == (2205,)
    x = FeatureExtractor().from_file(tmp_path / "short.wav")
    assert x.shape == (1, 64, 44)
    assert x[0, :, -10:].abs().max() == 0  # frames after the clip hold silence


def test_feature_sets_round_trip(tmp_path):
    sets = {
        "train": (torch.rand(3, 1, 64, 44), torch.tensor([1, 2, 3]), ["a", "b", "c"]),
        "test": (torch.rand(1, 1, 64, 44), torch.tensor([9]), ["d"]),
    }
    save_feature_sets(tmp_path / "f.safetensors", sets)
    loaded = load_feature_sets(tmp_path / "f.safetensors")
    for name, (x, y, ids) in sets.items():
        torch.testing.assert_close(loaded[name][0], x)
        assert loaded[name][1].tolist() == y.tolist() and loaded[name][2] == ids


def test_features_are_computed_once_per_dataset_and_splits_select_rows(tiny_dataset, tmp_path):
    from diffaug import steps
    from diffaug.splits import make_split

    manifest = tiny_dataset[1]
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    spec = {"sample_rate": 22050, "num_samples": 22050, "n_fft": 1024, "hop_length": 512, "n_mels": 16}
    steps.features(manifest_csv=str(tmp_path / "manifest.csv"), features=spec, output=str(tmp_path / "one.safetensors"))
    steps.features(
        manifest_csv=str(tmp_path / "manifest.csv"), features=spec, output=str(tmp_path / "two.safetensors"), threads=2
    )
    x, y, ids = load_feature_sets(tmp_path / "one.safetensors")["all"]
    assert ids == list(manifest["id"]) and y.tolist() == list(manifest["label"]) and x.shape == (80, 1, 16, 44)
    assert torch.equal(x, load_feature_sets(tmp_path / "two.safetensors")["all"][0])  # worker processes, same rows
    protocol = {"kind": "kfold", "test_folds": [1], "test_fraction": 0.1, "val_fraction": 0.2, "seed": 0}
    split = make_split(manifest, "fold2", protocol)
    parts = select_parts(tmp_path / "one.safetensors", split)
    for part in ("train", "val", "test"):
        px, py, pids = parts[part]
        assert pids == split[part] and len(px) == len(pids) > 0
        row = ids.index(pids[-1])
        assert torch.equal(px[-1], x[row]) and py[-1] == y[row]
    with pytest.raises(ValueError, match="no features for 1 clip.*different manifests"):
        select_parts(tmp_path / "one.safetensors", {**split, "test": [*split["test"], "unknown.wav"]})


def _chirp(samples=30000):
    t = torch.arange(samples) / 22050
    noise = 0.05 * torch.randn(samples, generator=torch.Generator().manual_seed(0))
    return 0.3 * torch.sin(2 * torch.pi * (200 + 2000 * t) * t) + noise


def test_power_features_are_the_published_ones_bit_for_bit():
    """log: false (the default) is the published recipe exactly: a plain MelSpectrogram of the cut clip."""
    chirp = _chirp()
    got = FeatureExtractor(FeatureSpec(log=False)).from_audio(chirp)
    mel = torchaudio.transforms.MelSpectrogram(22050, n_fft=1024, hop_length=512, n_mels=64)
    assert torch.equal(got, mel(chirp[:22050]).unsqueeze(0))
    assert torch.equal(got, FeatureExtractor().from_audio(chirp))
    # figures of the same clip from the extractor before features.log existed
    assert got.double().sum().item() == pytest.approx(410633.6443765834, rel=1e-5)
    assert got[0, 10, 5].item() == pytest.approx(1.1877504587173462, rel=1e-4)
    assert got[0, 40, 30].item() == pytest.approx(8.37929630279541, rel=1e-4)


@pytest.mark.parametrize("num_samples, frames", [(22050, 44), (88200, 173)])
def test_log_features_are_finite_decibels_of_the_power_mel(num_samples, frames):
    chirp = _chirp()
    spec = FeatureSpec(num_samples=num_samples, log=True)
    got = FeatureExtractor(spec).from_audio(chirp)
    assert got.shape == spec.shape == (1, 64, frames) and torch.isfinite(got).all()
    power = FeatureExtractor(FeatureSpec(num_samples=num_samples)).from_audio(chirp)
    expected = (10 * power.clamp_min(1e-10).log10()).clamp_min(10 * power.max().log10() - 80)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
    if num_samples == 88200:  # the padded silence sits at the floor, 80 dB below the peak
        assert got.max() - got.min() == pytest.approx(80, abs=1e-3)
        assert torch.equal(got[0, :, -20:], torch.full((64, 20), got.min().item()))


def test_four_seconds_take_the_whole_clip(tmp_path):
    sf.write(tmp_path / "long.wav", _chirp(88200).numpy(), 22050)
    x = FeatureExtractor(FeatureSpec(num_samples=88200)).from_file(tmp_path / "long.wav")
    assert x.shape == (1, 64, 173) and x[0, :, -10:].abs().max() > 0


@pytest.mark.parametrize("log", [False, True])
def test_features_turn_back_into_audio_with_the_same_features(log):
    """What the listening page plays of a mel average: audio whose features are the ones given."""
    extractor = FeatureExtractor(FeatureSpec(log=log))
    x = extractor.from_audio(_chirp())[None]
    audio = extractor.to_audio(x, torch.Generator().manual_seed(0))
    assert audio.shape == (1, 22050)
    db = FeatureExtractor(FeatureSpec(log=True))
    again, before = db.from_audio(audio[0]), db.from_audio(_chirp())
    noise = db.from_audio(0.1 * torch.randn(22050, generator=torch.Generator().manual_seed(1)))
    assert (again - before).abs().mean() < 2  # dB, at the same loudness: 0.4 when written
    assert (noise - before).abs().mean() > 5  # white noise at a like level is 6.9 dB away


def test_features_with_windows_too_far_apart_are_not_turned_into_audio():
    extractor = FeatureExtractor(FeatureSpec(n_fft=512, hop_length=512))
    with pytest.raises(ValueError, match="features.hop_length 512 is over half of n_fft 512"):
        extractor.to_audio(torch.rand(1, 1, 64, 44))


def test_added_sets_follow_the_training_clips(tmp_path):
    x, y = torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 0])
    for k in (1, 2):
        added = (torch.full((k, 1, 2, 2), float(k)), torch.full((k,), k), [f"g{k}-{i}" for i in range(k)])
        save_feature_sets(tmp_path / f"g{k}.safetensors", {"train": added})
    joined_x, joined_y, count = with_added_sets(x, y, [tmp_path / "g1.safetensors", tmp_path / "g2.safetensors"])
    assert count == 3 and joined_y.tolist() == [0, 1, 0, 1, 2, 2]
    assert joined_x[:, 0, 0, 0].tolist() == [0.0, 0.0, 0.0, 1.0, 2.0, 2.0]
    assert with_added_sets(x, y, [])[2] == 0


def test_a_pairs_first_clip_is_its_real_features_named_by_the_pair(tmp_path):
    real = torch.arange(4.0).view(4, 1, 1, 1)
    save_feature_sets(
        tmp_path / "real.safetensors", {"all": (real, torch.tensor([0, 0, 1, 1]), ["c0", "c1", "c2", "c3"])}
    )
    pairs = pd.DataFrame({"pair": ["b-0", "a-0"], "class": ["b", "a"], "source_a": ["c3", "c1"]}).set_index("pair")
    x, y, names = first_clips(tmp_path / "real.safetensors", pairs, ["a", "b"])
    assert x.flatten().tolist() == [3.0, 1.0] and y.tolist() == [1, 0] and names == ["b-0", "a-0"]
