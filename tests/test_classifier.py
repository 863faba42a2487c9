import torch

from diffaug.classifier import SoundCNN, confusion_matrix, train_classifier


def test_seed_network_shapes():
    model = SoundCNN()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 64, (5, 5), (0, 0)), (64, 128, (5, 5), (0, 0)), (128, 256, (5, 5), (0, 0))]
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
    model, history, chosen = train_classifier(_blobs(90, 0), _blobs(30, 1), _blobs(30, 2), settings, seed=0, n_classes=3)
    assert len(history) == 6
    best_val = max(h["val_accuracy"] for h in history)
    assert history[chosen - 1]["val_accuracy"] == best_val
    assert chosen == min(h["epoch"] for h in history if h["val_accuracy"] == best_val)
    assert best_val > 0.6
    x, y = _blobs(30, 3)
    assert (model(x).argmax(1) == y).float().mean() > 0.6
