from types import SimpleNamespace

import pytest
import torch

from diffaug.classifier import (
    SBCNN,
    SBCNN2017,
    ClassifierSettings,
    NetworkSettings,
    Normalised,
    SoundCNN,
    build_classifier,
    build_optimizer,
    classifier_metrics,
    confusion_matrix,
    judge_metrics,
    load_classifier,
    predict_proba,
    shaped,
    spec_augment,
    train_classifier,
)
from diffaug.files import save_tensors

PUBLISHED = {"widths": [4, 8, 8], "hidden": 16, "epochs": 6, "batch_size": 16, "learning_rate": 1e-2}
SB_CNN = PUBLISHED | {"model": "sb_cnn", "sb_cnn": {"widths": [8, 16, 16], "hidden": 16}}


def _built(section: dict, n_classes: int = 10):
    """build_classifier of a classifier section's network."""
    return build_classifier(NetworkSettings.from_config(section), n_classes)


def _trained(train, val, test, section: dict, **kwargs):
    """train_classifier with the settings of a classifier section."""
    return train_classifier(train, val, test, ClassifierSettings.from_config(section), **kwargs)


def test_the_published_network_shapes():
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
    model, history, chosen = _trained(_blobs(90, 0), _blobs(30, 1), _blobs(30, 2), settings, seed=0, n_classes=3)
    assert len(history) == 6
    best_val = max(h["val_accuracy"] for h in history)
    assert history[chosen - 1]["val_accuracy"] == best_val
    assert chosen == min(h["epoch"] for h in history if h["val_accuracy"] == best_val)
    assert best_val > 0.6
    x, y = _blobs(30, 3)
    assert (model(x).argmax(1) == y).float().mean() > 0.6


def test_epoch_choice_last_keeps_the_last_epoch_and_needs_no_validation_clips():
    settings = PUBLISHED | {"epoch_choice": "last"}
    empty = (torch.empty(0, 1, 16, 16), torch.empty(0, dtype=torch.long))
    model, history, chosen = _trained(_blobs(90, 0), empty, _blobs(30, 2), settings, seed=0, n_classes=3)
    assert chosen == 6 and all(h["val_accuracy"] is None for h in history)
    # the same run with validation clips still keeps the last epoch's weights, whatever they score
    again, history, chosen = _trained(_blobs(90, 0), _blobs(30, 1), _blobs(30, 2), settings, seed=0, n_classes=3)
    assert chosen == 6 and all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values())
    )
    with pytest.raises(ValueError, match="no validation clips to choose the epoch on"):
        _trained(_blobs(90, 0), empty, _blobs(30, 2), PUBLISHED, seed=0, n_classes=3)


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
    fp32 = _trained(*data, settings | {"precision": "fp32"}, seed=0, n_classes=3)[1]
    bf16 = [_trained(*data, settings | {"precision": "bf16"}, seed=0, n_classes=3)[1] for _ in range(2)]
    assert bf16[0] == bf16[1]
    assert (bf16[0] != fp32) == native_cpu_bf16()  # fp16 and non-native bf16 leave a CPU in fp32
    assert _trained(*data, settings | {"precision": "fp16"}, seed=0, n_classes=3)[1] == fp32


def test_sb_cnn_layers_follow_salamon_and_bello_with_batch_norm():
    model = _built({"model": "sb_cnn", "widths": [1], "hidden": 1})  # published keys unused
    assert isinstance(model, SBCNN)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 24, (5, 5), (2, 2)),
        (24, 48, (5, 5), (2, 2)),
        (48, 48, (5, 5), (2, 2)),
    ]
    kinds = [type(m).__name__ for m in model.features]
    assert kinds[:9] == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Conv2d",
    ]
    assert [m.kernel_size for m in model.features if isinstance(m, torch.nn.MaxPool2d)] == [(2, 4), (2, 4)]
    dense = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(48, 64), (64, 10)]
    assert [m.p for m in model.head if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]


@pytest.mark.parametrize("mels, frames", [(64, 44), (128, 44), (64, 173), (128, 173), (32, 44), (40, 173)])
def test_sb_cnn_takes_1_s_and_4_s_inputs_of_any_mels(mels, frames):
    torch.manual_seed(0)
    model = _built({"model": "sb_cnn"}).eval()
    assert model(torch.rand(2, 1, mels, frames)).shape == (2, 10)


SB_CNN_2017 = PUBLISHED | {"model": "sb_cnn_2017", "sb_cnn_2017": {"patch_frames": 128, "patch_hop": 16}}


def test_sb_cnn_2017_is_the_published_network():
    torch.manual_seed(0)
    model = shaped(_built({"model": "sb_cnn_2017"}), torch.zeros(1, 1, 128, 173))
    assert isinstance(model, SBCNN2017)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 24, (5, 5), (0, 0)),
        (24, 48, (5, 5), (0, 0)),
        (48, 48, (5, 5), (0, 0)),
    ]
    kinds = [type(m).__name__ for m in model.features]
    assert kinds == ["Conv2d", "MaxPool2d", "ReLU", "Conv2d", "MaxPool2d", "ReLU", "Conv2d", "ReLU", "Flatten"]
    assert [m.kernel_size for m in model.features if isinstance(m, torch.nn.MaxPool2d)] == [(2, 4), (2, 4)]
    # a 128 x 128 patch: 124 x 124, pooled 62 x 31, 58 x 27, pooled 29 x 6, 25 x 2 by 48 filters, flattened
    dense = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(48 * 25 * 2, 64), (64, 10)]
    assert [m.p for m in model.head if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    assert _parameters(model) == 241_434  # as published


def test_sb_cnn_2017_trains_on_random_patches_and_tests_on_the_mean_over_patches():
    torch.manual_seed(0)
    model = shaped(_built(SB_CNN_2017), torch.zeros(1, 1, 128, 173))
    x = torch.rand(3, 1, 128, 173)
    patches = model.eval()._patches(x)
    assert patches.shape == (3, 3, 1, 128, 128)  # offsets 0, 16 and 32 of 45 possible
    torch.testing.assert_close(patches[:, 1], x[..., 16:144])
    each = torch.stack([model.head(model.features(patches[:, k])).softmax(-1) for k in range(3)], 1)
    torch.testing.assert_close(predict_proba(model, x), each.mean(1), rtol=1e-5, atol=1e-6)
    model.train()
    first, second = model._patches(x), model._patches(x)
    assert first.shape == (3, 1, 1, 128, 128) and not torch.equal(first, second)  # a new offset each time
    offset = int((x[0, 0, 0] == first[0, 0, 0, 0, 0]).nonzero()[0])  # where the first clip's patch starts
    torch.testing.assert_close(first[0, 0], x[0, ..., offset : offset + 128])
    assert model(x).shape == (3, 10)
    with pytest.raises(ValueError, match="inputs of 100 frames are shorter than a patch of 128"):
        model(torch.rand(2, 1, 128, 100))


def test_sb_cnn_2017_uses_sgd_with_l2_on_the_dense_weights_and_loads_back(tmp_path):
    torch.manual_seed(0)
    model = shaped(_built(SB_CNN_2017, 3), torch.zeros(1, 1, 32, 140))
    optimizer = build_optimizer(model, ClassifierSettings.from_config(SB_CNN_2017))
    assert type(optimizer) is torch.optim.SGD and optimizer.param_groups[0]["momentum"] == 0
    dense, others = optimizer.param_groups
    assert dense["weight_decay"] == pytest.approx(2 * 0.001) and others["weight_decay"] == 0.0
    assert [p.shape for p in dense["params"]] == [(64, 48 * 1 * 2), (3, 64)]  # the weights of both dense layers
    assert len(dense["params"]) + len(others["params"]) == len(list(model.parameters()))
    save_tensors(tmp_path / "model.safetensors", model.state_dict())
    loaded = load_classifier(tmp_path / "model.safetensors", NetworkSettings.from_config(SB_CNN_2017), 3)
    x = torch.rand(2, 1, 32, 140)
    torch.testing.assert_close(predict_proba(loaded, x), predict_proba(model, x))
    trained, history, chosen = _trained(
        (torch.rand(12, 1, 32, 140), torch.arange(12) % 3),
        (torch.rand(6, 1, 32, 140), torch.arange(6) % 3),
        (torch.rand(6, 1, 32, 140), torch.arange(6) % 3),
        SB_CNN_2017 | {"epochs": 2},
        seed=0,
        n_classes=3,
    )
    assert len(history) == 2 and isinstance(trained, SBCNN2017)


def _parameters(model):
    return sum(p.numel() for p in model.parameters())


def test_sb_cnn_is_a_twelfth_of_the_published_network():
    # 5x5 convs 1->24->48->48 without bias (batch norm follows), 48->64->10 dense: whatever the input size
    assert _parameters(_built({"model": "sb_cnn"})) == 600 + 28_800 + 57_600 + 2 * (24 + 48 + 48) + 3_136 + 650
    assert _parameters(_built({"widths": [64, 128, 256], "hidden": 256})) == 1_094_410  # published


def test_published_cnn_stays_the_default_with_the_same_initial_weights():
    torch.manual_seed(3)
    built = _built({"widths": [4, 8, 8], "hidden": 16}, 3)
    torch.manual_seed(3)
    direct = SoundCNN(3, [4, 8, 8], 16)
    assert type(built) is SoundCNN
    assert built.state_dict().keys() == direct.state_dict().keys()
    assert all(torch.equal(built.state_dict()[k], v) for k, v in direct.state_dict().items())
    with pytest.raises(ValueError, match="classifier.model 'resnet'"):
        _built({"model": "resnet"})


def test_weight_decay_applies_to_sb_cnn_weights_only_and_never_to_the_published_cnn():
    published = build_optimizer(_built(PUBLISHED, 3), ClassifierSettings.from_config(PUBLISHED))
    assert type(published) is torch.optim.Adam and len(published.param_groups) == 1
    assert published.param_groups[0]["weight_decay"] == 0
    settings = SB_CNN | {"sb_cnn": {"weight_decay": 0.3}}
    model = _built(settings, 3)
    optimizer = build_optimizer(model, ClassifierSettings.from_config(settings))
    assert type(optimizer) is torch.optim.AdamW
    decayed, kept = optimizer.param_groups
    assert decayed["weight_decay"] == 0.3 and kept["weight_decay"] == 0.0
    assert {p.ndim for p in decayed["params"]} == {2, 4} and {p.ndim for p in kept["params"]} == {1}
    assert len(decayed["params"]) + len(kept["params"]) == len(list(model.parameters()))
    default = build_optimizer(model, ClassifierSettings.from_config(SB_CNN))
    assert default.param_groups[0]["weight_decay"] == 0.01  # the schema's default


def test_sb_cnn_learns_separable_data():
    model, history, chosen = _trained(_blobs(90, 0), _blobs(30, 1), _blobs(30, 2), SB_CNN, seed=0, n_classes=3)
    assert isinstance(model, SBCNN) and max(h["val_accuracy"] for h in history) > 0.6
    x, y = _blobs(30, 3)
    assert (predict_proba(model, x).argmax(1) == y).float().mean() > 0.6  # chance: 1/3


def _band_stats(x):
    return x.double().mean((0, 1, 3)), x.double().std((0, 1, 3), correction=0)


@pytest.mark.parametrize("settings", [PUBLISHED, SB_CNN], ids=["published_cnn", "sb_cnn"])
def test_per_band_statistics_come_from_training_inputs_only_and_are_saved(settings):
    settings = settings | {"normalise": "per_band", "epochs": 2}
    train, val, test = _blobs(48, 0), _blobs(16, 1), _blobs(16, 2)
    train = (train[0] * torch.linspace(1, 5, 16).view(1, 1, 16, 1) + 3, train[1])  # bands of unlike scales
    model = _trained(train, val, test, settings, seed=0, n_classes=3)[0]
    assert isinstance(model, Normalised) and {"norm.mean", "norm.std"} <= set(model.state_dict())
    mean, std = _band_stats(train[0])
    torch.testing.assert_close(model.norm.mean.flatten().double(), mean)
    torch.testing.assert_close(model.norm.std.flatten().double(), std)
    other = _trained(train, (val[0] * 100, val[1]), (test[0] - 7, test[1]), settings, seed=0, n_classes=3)[0]
    assert torch.equal(other.norm.mean, model.norm.mean) and torch.equal(other.norm.std, model.norm.std)
    real = train[0][:24]  # e.g. the real clips of a training set that has added ones
    given = _trained(train, val, test, settings, seed=0, n_classes=3, norm_inputs=real)[0]
    torch.testing.assert_close(given.norm.mean.flatten().double(), _band_stats(real)[0])
    # the model applies the statistics itself: loaded weights predict raw inputs alike
    loaded = _built(settings, 3)
    loaded.load_state_dict(model.state_dict())
    assert loaded.norm.mean.shape == (1, 1, 16, 1)
    torch.testing.assert_close(predict_proba(loaded, test[0]), predict_proba(model, test[0]))


def test_constant_bands_are_only_centred():
    from diffaug.classifier import BandNorm

    x = torch.rand(10, 1, 4, 6)
    x[:, :, 2] = 5.0
    norm = BandNorm().fit(x)
    assert norm.std.flatten()[2] > 0 and torch.isfinite(norm(x)).all()
    assert torch.equal(BandNorm().fit(torch.zeros(3, 1, 4, 6)).std, torch.ones(1, 1, 4, 1))


def test_metrics_json_says_which_run_or_judge_it_is_then_how_it_did():
    run = SimpleNamespace(record=lambda test, classes: {"seed": 0, "test_accuracy": 0.5, "tested": len(test[2])})
    sets = {"train": (None, None, ["a", "b", "c"]), "test": (None, None, ["t"])}
    metrics = classifier_metrics(run, sets, ["x"], "fold2-n50", "diffusion", 7, 1)
    assert list(metrics.items()) == [
        ("split", "fold2-n50"),
        ("train_per_class", 50),
        ("arm", "diffusion"),
        ("seed", 0),
        ("test_accuracy", 0.5),
        ("tested", 1),
        ("train_clips", {"real": 3, "generated": 7}),
        ("generated_set", 1),
    ]
    judged = judge_metrics(run, sets, ["x"], "fold2", 1, 0.75)
    assert list(judged) == ["split", "half", "seed", "test_accuracy", "tested", "train_clips", "held_out_accuracy"]
    assert (judged["split"], judged["half"], judged["train_clips"], judged["held_out_accuracy"]) == (
        "fold2",
        1,
        3,
        0.75,
    )
