import torch

from diffaug.classifier import SoundCNN, confusion_matrix, spec_augment, train_classifier


def test_seed_network_shapes():
    model = SoundCNN()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 64, (5, 5), (0, 0)),
        (64, 128, (5, 5), (0, 0)),
        (128, 256, (5, 5), (0, 0)),
    ]
    assert model(torch.rand(2, 1, 64, 44)).shape == (2, 10)
    assert model.features[:-2](torch.rand(1, 1, 64, 44)).shape == (1, 256, 52, 32)
    assert SoundCNN(widths=(4, 8, 16), hidden=8)(torch.rand(3, 1, 64, 44)).shape == (3, 10)


def test_confusion_matrix_rows_are_true_classes():
    matrix = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 0, 1, 2]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def _blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.rand(n, 1, 16, 16, generator=g) * 0.5
    for c in range(3):
        x[y == c, :, c * 5 : c * 5 + 5] += 1.0
    return x, y


def test_training_learns_and_chooses_the_epoch_on_validation():
    settings = {"widths": [4, 8, 8], "hidden": 16, "epochs": 6, "batch_size": 16, "learning_rate": 1e-2}
    model, history, chosen = train_classifier(
        _blobs(90, 0), _blobs(30, 1), _blobs(30, 2), settings, seed=0, n_classes=3
    )
    assert len(history) == 6
    best_val = max(h["val_accuracy"] for h in history)
    assert history[chosen - 1]["val_accuracy"] == best_val
    assert chosen == min(h["epoch"] for h in history if h["val_accuracy"] == best_val)
    assert best_val > 0.6
    x, y = _blobs(30, 3)
    assert (model(x).argmax(1) == y).float().mean() > 0.6


def test_spec_augment_masks_bands_and_frames_per_clip():
    torch.manual_seed(0)
    masked = spec_augment({"freq_masks": 1, "freq_width": 10, "time_masks": 1, "time_width": 8})(
        torch.ones(16, 1, 64, 44)
    )
    assert masked.shape == (16, 1, 64, 44)
    zero_rows = (masked == 0).all(dim=3).sum(dim=(1, 2))  # fully masked mel bands per clip
    zero_cols = (masked == 0).all(dim=2).sum(dim=(1, 2))  # fully masked frames per clip
    assert (zero_rows < 10).all() and (zero_cols < 8).all() and zero_rows.sum() > 0 and zero_cols.sum() > 0
    assert len({tuple(m.flatten().tolist()) for m in (masked == 0)}) > 1  # not the same mask for all
    assert spec_augment({"freq_masks": 0, "freq_width": 1, "time_masks": 0, "time_width": 1})(masked).equal(masked)


def test_bf16_applies_on_a_cpu_only_where_it_is_native_and_stays_reproducible():
    from diffaug.devices import native_cpu_bf16

    settings = {
        "widths": [4, 8, 8],
        "hidden": 16,
        "epochs": 2,
        "batch_size": 16,
        "learning_rate": 1e-2,
        "device": "cpu",
    }
    data = (_blobs(48, 0), _blobs(16, 1), _blobs(16, 2))
    fp32 = train_classifier(*data, settings | {"precision": "fp32"}, seed=0, n_classes=3)[1]
    bf16 = [train_classifier(*data, settings | {"precision": "bf16"}, seed=0, n_classes=3)[1] for _ in range(2)]
    assert bf16[0] == bf16[1]
    assert (bf16[0] != fp32) == native_cpu_bf16()  # fp16 and non-native bf16 leave a CPU in fp32
    assert train_classifier(*data, settings | {"precision": "fp16"}, seed=0, n_classes=3)[1] == fp32
