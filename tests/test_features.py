import numpy as np
import soundfile as sf
import torch
import torchaudio

from diffaug.audio import load_mono
from diffaug.features import FeatureExtractor, FeatureSpec, load_feature_sets, save_feature_sets


def test_shape_is_the_seeds(tiny_dataset):
    x = FeatureExtractor().from_files(tiny_dataset[1]["path"].head(3).tolist())
    assert x.shape == (3, 1, 64, 44)
    assert FeatureSpec().shape == (1, 64, 44)


def test_features_follow_the_seed_recipe(tmp_path):
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
