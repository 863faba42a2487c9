"""The classifiers and their training: epoch chosen on validation clips, test clips only evaluated.

`classifier.model` picks the network: published_cnn (the published study's SoundCNN) or sb_cnn (an
SB-CNN with batch normalisation); `classifier.normalise: per_band` puts per-mel-band statistics of
the training clips in front of either. `build_classifier` makes every network that is trained or
loaded, so saved weights load back into the architecture that wrote them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
import torchaudio
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import Checkpoint, load_optimizer_state, optimizer_state, strip_prefix, with_prefix
from .devices import autocast, reduced_dtype, resolve_device
from .files import load_tensors

log = logging.getLogger(__name__)


class SoundCNN(nn.Module):
    """Three unpadded 5x5 conv + ReLU blocks, global average pooling, then two linear layers."""

    def __init__(self, n_classes: int = 10, widths: Sequence[int] = (64, 128, 256), hidden: int = 256):
        super().__init__()
        layers, channels = [], 1
        for width in widths:
            layers += [nn.Conv2d(channels, width, kernel_size=5), nn.ReLU()]
            channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


SB_CNN_DEFAULTS = {"widths": [24, 48, 48], "hidden": 64, "dropout": 0.5, "weight_decay": 0.01}
"""classifier.sb_cnn settings that a config leaves out."""


class SBCNN(nn.Module):
    """SB-CNN (Salamon & Bello 2017) for (batch, 1, mels, frames) log-mel input, with batch norm.

    Each block is a 5x5 conv (zero-padded to keep its size) + batch norm + ReLU; every block but the
    last max-pools 2 bands by 4 frames (the paper's (4, 2) over time and frequency). Global average
    pooling replaces the paper's flattening, so the dense layers do not depend on the input size
    (1 s or 4 s, any n_mels; ceil-mode pooling keeps at least one cell). Then dropout, dense `hidden`,
    ReLU, dropout, dense n_classes, as the paper puts dropout on the inputs of its last two layers.
    """

    def __init__(
        self,
        n_classes: int = 10,
        widths: Sequence[int] = (24, 48, 48),
        hidden: int = 64,
        dropout: float = 0.5,
    ):
        super().__init__()
        layers, channels = [], 1
        for i, width in enumerate(widths):
            layers += [nn.Conv2d(channels, width, 5, padding=2, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d((2, 4), ceil_mode=True))
            channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(channels, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BandNorm(nn.Module):
    """Subtracts a mean and divides by a standard deviation per mel band, both kept as buffers in the
    state dict (shape (1, 1, mels, 1)); the identity until `fit` or a loaded state dict sets them."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 1, 1, 1))
        self.register_buffer("std", torch.ones(1, 1, 1, 1))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, chunk: int = 1024) -> BandNorm:
        """Statistics of (clips, 1, mels, frames) inputs over clips and frames, in float64 and in
        chunks. A band of (nearly) constant value is only centred: its std is floored at 1e-6 of
        the largest band's, or 1 if all are constant."""
        count = x.shape[0] * x.shape[1] * x.shape[3]
        if count == 0:
            raise ValueError("per-band statistics need at least one training clip")
        total = sum(x[i : i + chunk].double().sum((0, 1, 3), keepdim=True) for i in range(0, len(x), chunk))
        mean = total / count
        squares = sum(
            (x[i : i + chunk].double() - mean).pow(2).sum((0, 1, 3), keepdim=True) for i in range(0, len(x), chunk)
        )
        std = (squares / count).sqrt()
        largest = float(std.max())
        std = std.clamp_min(1e-6 * largest) if largest > 0 else torch.ones_like(std)
        self.mean, self.std = mean.float().to(self.mean.device), std.float().to(self.std.device)
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("mean", "std"):  # take the saved number of bands
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name], device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Normalised(nn.Module):
    """A network behind a BandNorm: state dict keys norm.mean, norm.std and net.*."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.norm, self.net = BandNorm(), net

    @property
    def head(self) -> nn.Module:
        return self.net.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x))


MODELS = ("published_cnn", "sb_cnn")
NORMALISE = ("none", "per_band")


def sb_cnn_settings(settings: dict) -> dict:
    """classifier.sb_cnn with defaults for what it leaves out."""
    return SB_CNN_DEFAULTS | (settings.get("sb_cnn") or {})


def build_classifier(settings: dict, n_classes: int = 10) -> nn.Module:
    """The network of classifier settings, freshly initialised from the global generator:
    `model` published_cnn (default; the published SoundCNN with `widths` and `hidden`) or sb_cnn
    (SBCNN with the `sb_cnn` block), behind a BandNorm when `normalise` is per_band (default none)."""
    name, normalise = settings.get("model", "published_cnn"), settings.get("normalise", "none")
    if name == "published_cnn":
        net = SoundCNN(n_classes, settings["widths"], settings["hidden"])
    elif name == "sb_cnn":
        sb = sb_cnn_settings(settings)
        net = SBCNN(n_classes, sb["widths"], sb["hidden"], sb["dropout"])
    else:
        raise ValueError(f"classifier.model {name!r}: choose one of {', '.join(MODELS)}")
    if normalise == "none":
        return net
    if normalise == "per_band":
        return Normalised(net)
    raise ValueError(f"classifier.normalise {normalise!r}: choose one of {', '.join(NORMALISE)}")


def network_settings(settings: dict) -> dict:
    """The classifier settings that rebuild a trained network and predict as its test clips were
    scored, defaults filled in: model, normalise, precision and the chosen network's block."""
    name = settings.get("model", "published_cnn")
    kept = {
        "model": name,
        "normalise": settings.get("normalise", "none"),
        "precision": settings.get("precision", "fp32"),
    }
    if name == "sb_cnn":
        return kept | {"sb_cnn": sb_cnn_settings(settings)}
    return kept | {key: settings[key] for key in ("widths", "hidden")}


def load_classifier(weights, settings: dict, n_classes: int = 10) -> nn.Module:
    """Saved weights (safetensors) in the network that `settings` build, per-band statistics included."""
    model = build_classifier(settings, n_classes)
    model.load_state_dict(load_tensors(weights)[0])
    return model


def build_optimizer(model: nn.Module, settings: dict) -> torch.optim.Optimizer:
    """published_cnn: Adam without weight decay, as the published study trained. sb_cnn: AdamW with
    sb_cnn.weight_decay on the conv and dense weights, none on biases and batch-norm parameters."""
    if settings.get("model", "published_cnn") == "published_cnn":
        return torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    decay = sb_cnn_settings(settings)["weight_decay"]
    weights = [p for p in model.parameters() if p.ndim > 1]
    others = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": weights, "weight_decay": decay}, {"params": others, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=settings["learning_rate"])


def spec_augment(settings: dict) -> Callable[[torch.Tensor], torch.Tensor]:
    """Frequency and time masking of (batch, 1, mels, frames) features, each clip its own masks."""
    masks = [torchaudio.transforms.FrequencyMasking(settings["freq_width"], iid_masks=True)] * settings["freq_masks"]
    masks += [torchaudio.transforms.TimeMasking(settings["time_width"], iid_masks=True)] * settings["time_masks"]
    return nn.Sequential(*masks)


@torch.inference_mode()
def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities for every row of `x`, computed on the model's device, returned on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    chunks = [model(x[i : i + batch_size].to(device)).float().softmax(1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(chunks) if chunks else torch.empty(0, model.head[-1].out_features)


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predicted class index for every row of `x`."""
    return predict_proba(model, x, batch_size).argmax(1)


def training_device(settings: dict) -> torch.device:
    """Where a classifier of these settings trains and predicts."""
    return resolve_device(settings.get("device", "auto"), "classifier.device")


def probabilities(model: nn.Module, x: torch.Tensor, settings: dict) -> torch.Tensor:
    """Class probabilities on the classifier's device and in the precision it trains in."""
    device = training_device(settings)
    with autocast(device, settings.get("precision", "fp32"), cpu_bf16=True):
        return predict_proba(model.to(device), x)


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predicted == labels).float().mean()) if len(labels) else float("nan")


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Rows are true classes, columns predicted ones."""
    return torch.bincount(labels * n_classes + predicted, minlength=n_classes**2).view(n_classes, n_classes)


def train_classifier(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    settings: dict,
    seed: int,
    n_classes: int = 10,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    checkpoint: Checkpoint | None = None,
    norm_inputs: torch.Tensor | None = None,
):
    """Cross entropy with build_optimizer's optimizer; keeps the weights of the epoch with the best
    validation accuracy. The network is build_classifier's for `settings`.

    With `normalise: per_band`, the per-band statistics come from `norm_inputs` (default: the
    training inputs), never from validation or test clips; every set is normalised once before
    training, so `augment` masks normalised inputs (a masked cell holds its band's mean), and the
    returned model carries the statistics as buffers and applies them to raw inputs.

    `augment`, if given, transforms each training batch (e.g. spec_augment masking). With a
    checkpoint, the state is saved after every epoch and a saved state is resumed from, with the
    same result as an uninterrupted run. `settings["device"]` (auto, cpu, cuda) says where to
    train: on CUDA every set lives on the device. `settings["precision"]` (fp32, bf16, fp16) applies
    there, and bf16 also on a CPU that computes it natively (2.2x faster on the demo, accuracy
    within noise); a CPU run is byte-reproducible on the same kind of CPU.

    Test accuracy is measured every epoch only to report the published protocol's figure (best
    epoch on test), which is labelled as such and never used to choose anything.
    Returns (model with the chosen weights, history of per-epoch dicts, chosen epoch).
    """
    device, precision = training_device(settings), settings.get("precision", "fp32")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_classifier(settings, n_classes)
    if isinstance(model, Normalised):
        model.norm.fit(train[0] if norm_inputs is None else norm_inputs)
    model = model.to(device)
    optimizer = build_optimizer(model, settings)
    scaler = torch.amp.GradScaler(device.type, enabled=reduced_dtype(device, precision) == torch.float16)
    loss_fn = nn.CrossEntropyLoss()
    x, y = (t.to(device) for t in train)
    val_x, test_x = val[0].to(device), test[0].to(device)
    returned = model
    if isinstance(model, Normalised):  # the network trains on inputs normalised once
        with torch.no_grad():
            x, val_x, test_x = model.norm(x), model.norm(val_x), model.norm(test_x)
        model = model.net
    best_state, best_val, chosen, history = None, -1.0, 0, []
    saved = checkpoint.load() if checkpoint else None
    if saved:
        tensors, state = saved
        model.load_state_dict(strip_prefix("model", tensors))
        best_state = strip_prefix("best", tensors)
        load_optimizer_state(optimizer, strip_prefix("optimizer", tensors), state["optimizer"])
        generator.set_state(tensors["generator"])
        torch.set_rng_state(tensors["rng"])  # specaugment draws its masks from the global generator
        if "cuda_rng" in tensors and device.type == "cuda":
            torch.cuda.set_rng_state(tensors["cuda_rng"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history, best_val, chosen = state["history"], state["best_val"], state["chosen"]
        log.info("resuming after epoch %d of %d (%s)", len(history), settings["epochs"], checkpoint.path)
    epochs = range(len(history) + 1, settings["epochs"] + 1)
    bar = tqdm(
        epochs, initial=len(history), total=settings["epochs"], desc=f"train classifier (seed {seed})", mininterval=2
    )
    for epoch in bar:
        model.train()
        order = torch.randperm(len(x), generator=generator).to(device)
        total = torch.zeros((), dtype=torch.float64, device=device)  # summed on the device: no sync per batch
        for start in range(0, len(x), settings["batch_size"]):
            index = order[start : start + settings["batch_size"]]
            batch = augment(x[index]) if augment else x[index]
            with autocast(device, precision, cpu_bf16=True):
                loss = loss_fn(model(batch).float(), y[index])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach().double() * len(index)
        val_acc = accuracy(probabilities(model, val_x, settings).argmax(1), val[1])
        test_acc = accuracy(probabilities(model, test_x, settings).argmax(1), test[1])
        mean_loss = total.item() / len(x)
        history.append({"epoch": epoch, "loss": mean_loss, "val_accuracy": val_acc, "test_accuracy": test_acc})
        bar.set_postfix(loss=f"{mean_loss:.3f}", val=f"{val_acc:.3f}", refresh=False)
        if val_acc > best_val:
            best_val, chosen = val_acc, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        if checkpoint and epoch < settings["epochs"]:
            opt_tensors, opt_meta = optimizer_state(optimizer)
            checkpoint.save(
                {
                    **with_prefix("model", model.state_dict()),
                    **with_prefix("best", best_state),
                    **with_prefix("optimizer", opt_tensors),
                    "generator": generator.get_state(),
                    "rng": torch.get_rng_state(),
                    **({"cuda_rng": torch.cuda.get_rng_state()} if device.type == "cuda" else {}),
                },
                {
                    "history": history,
                    "best_val": best_val,
                    "chosen": chosen,
                    "optimizer": opt_meta,
                    "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                },
            )
    model.load_state_dict(best_state)
    return returned.cpu(), history, chosen
