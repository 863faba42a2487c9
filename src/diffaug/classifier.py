"""The published study's CNN and its training: epoch chosen on validation clips, test clips only evaluated."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
import torchaudio
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import Checkpoint, load_optimizer_state, optimizer_state, strip_prefix, with_prefix
from .devices import autocast, reduced_dtype, resolve_device

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
):
    """Adam + cross entropy; keeps the weights of the epoch with the best validation accuracy.

    `augment`, if given, transforms each training batch (e.g. spec_augment masking). With a
    checkpoint, the state is saved after every epoch and a saved state is resumed from, with the
    same result as an uninterrupted run. `settings["device"]` (auto, cpu, cuda) says where to
    train: on CUDA every set lives on the device. `settings["precision"]` (fp32, bf16, fp16) applies
    there, and bf16 also on a CPU that computes it natively (2.2x faster on the demo, accuracy
    within noise); a CPU run is byte-reproducible on the same kind of CPU.

    Test accuracy is measured every epoch only to report the seed-style figure (best epoch on
    test), which is labelled as such and never used to choose anything.
    Returns (model with the chosen weights, history of per-epoch dicts, chosen epoch).
    """
    device, precision = training_device(settings), settings.get("precision", "fp32")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = SoundCNN(n_classes, settings["widths"], settings["hidden"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    scaler = torch.amp.GradScaler(device.type, enabled=reduced_dtype(device, precision) == torch.float16)
    loss_fn = nn.CrossEntropyLoss()
    x, y = (t.to(device) for t in train)
    val_x, test_x = val[0].to(device), test[0].to(device)
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
    return model.cpu(), history, chosen
