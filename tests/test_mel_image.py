import librosa
import numpy as np
import torch

from diffaug.mel_image import MelImager, MelSpec

SPEC = MelSpec(x_res=32, y_res=32, sample_rate=22050, n_fft=1024, hop_length=512, top_db=80, n_iter=16)


def _tone(hz=440.0, noise=0.05):
    t = np.arange(SPEC.slice_samples) / SPEC.sample_rate
    hiss = noise * np.random.default_rng(0).standard_normal(len(t))
    return (np.sin(2 * np.pi * hz * t) * (1 + np.sin(2 * np.pi * 3 * t)) + hiss).astype(np.float32)


def test_image_matches_the_audio_diffusion_convention():
    """Same values as librosa's power mel in dB relative to the max, scaled to [0, 1]."""
    audio = _tone()
    image = MelImager(SPEC).audio_to_image(torch.from_numpy(audio)[None])
    power = librosa.feature.melspectrogram(y=audio, sr=22050, n_fft=1024, hop_length=512, n_mels=32)
    expected = (librosa.power_to_db(power, ref=np.max, top_db=80) + 80) / 80
    assert image.shape == (1, 1, 32, 32)
    np.testing.assert_allclose(image[0, 0].numpy(), expected, atol=1e-4)


def test_quantize_rounds_to_8_bits():
    image = MelImager(SPEC).audio_to_image(torch.from_numpy(_tone())[None], quantize=True)
    assert torch.allclose(image * 255, torch.round(image * 255), atol=1e-4)


def test_griffin_lim_returns_audio_with_the_same_spectrogram():
    imager = MelImager(SPEC)
    image = imager.audio_to_image(torch.from_numpy(_tone())[None])
    audio = imager.image_to_audio(image, torch.Generator().manual_seed(0))
    assert audio.shape == (1, SPEC.slice_samples)
    again = imager.audio_to_image(audio)
    assert (again - image).abs().mean() < 0.1
    other = imager.audio_to_image(torch.from_numpy(_tone(hz=2000.0, noise=0.0))[None])
    assert (other - image).abs().mean() > 0.3  # the bound above is tight enough to mean something


def test_mel_to_linear_is_a_non_negative_inverse_of_the_filterbank():
    imager = MelImager(SPEC)
    fb = imager.mel.mel_scale.fb  # (freq, mels)
    linear = torch.rand(2, fb.shape[0], 8, generator=torch.Generator().manual_seed(0)) ** 4
    mel = fb.T @ linear
    rebuilt = imager.mel_to_linear(mel)
    assert rebuilt.shape == linear.shape and (rebuilt >= 0).all()
    assert ((fb.T @ rebuilt) - mel).norm() < 0.05 * mel.norm()
    plain = (torch.linalg.pinv(fb.T) @ mel).clamp_min(0)  # the least-squares answer, clipped
    assert ((fb.T @ rebuilt) - mel).norm() < ((fb.T @ plain) - mel).norm()


def test_griffin_lim_leaves_no_click_at_the_end_of_the_slice():
    """With hop = n_fft / 2 only a near-zero window tail covers the last samples."""
    imager = MelImager(SPEC)
    image = imager.audio_to_image(torch.from_numpy(_tone())[None])
    audio = imager.image_to_audio(image, torch.Generator().manual_seed(0))[0]
    end, body = audio[-SPEC.hop_length // 4 :], audio[: -SPEC.hop_length]
    assert end.abs().max() <= body.abs().max()
