"""The classifiers and their training: epoch chosen on validation clips, test clips only evaluated.

`classifier.model` picks the network: published_cnn (the published study's SoundCNN), sb_cnn (an
SB-CNN with batch normalisation and global pooling) or sb_cnn_2017 (SB-CNN as Salamon and Bello
published it: patches, flattening, SGD); `classifier.normalise: per_band` puts per-mel-band
statistics of the training clips in front of any. `build_classifier` makes every network that is trained or
loaded, so saved weights load back into the architecture that wrote them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial

import torch
import torchaudio
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import (
    Checkpoint,
    fingerprint,
    load_optimizer_state,
    optimizer_state,
    strip_prefix,
    with_prefix,
)
from .devices import autocast, reduced_dtype, resolve_device, runtime_signature
from .files import load_tensors
from .finite import non_finite, require_finite_training
from .schema import with_defaults
from .splits import parse_split_name

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


def sb_cnn_head(hidden: nn.Module, n_classes: int, dropout: float) -> nn.Sequential:
    """SB-CNN's dense layers: dropout, the `hidden` dense layer, ReLU, dropout, the output layer (the
    paper puts dropout on the inputs of its last two layers)."""
    return nn.Sequential(
        nn.Dropout(dropout), hidden, nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden.out_features, n_classes)
    )


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
        self.head = sb_cnn_head(nn.Linear(channels, hidden), n_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SBCNN2017(nn.Module):
    """SB-CNN as Salamon and Bello (2017) published it, for (batch, 1, mels, frames) log-mel input of
    128 bands at 44.1 kHz with 1024-sample windows and hops (features set so).

    Three unpadded 5x5 conv layers (24, 48, 48 filters), the first two max-pooled over 4 frames by 2
    bands, ReLU after each; the last feature map flattened, dropout, a dense layer of 64 with ReLU,
    dropout, the output layer. It sees `patch_frames` frames (128: 3 s): in training a patch at a
    random offset of each clip, drawn anew every time; in evaluation every patch at `patch_hop`
    frames apart (1, as published), the clip's class probabilities the mean over its patches. The
    dense layers' size follows the patch, so the first one is built from the first input it sees.
    """

    def __init__(
        self,
        n_classes: int = 10,
        widths: Sequence[int] = (24, 48, 48),
        hidden: int = 64,
        dropout: float = 0.5,
        patch_frames: int = 128,
        patch_hop: int = 1,
        patches_per_pass: int = 1024,
    ):
        super().__init__()
        layers, channels = [], 1
        for i, width in enumerate(widths):
            layers.append(nn.Conv2d(channels, width, kernel_size=5))
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d((2, 4)))
            layers.append(nn.ReLU())
            channels = width
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = sb_cnn_head(nn.LazyLinear(hidden), n_classes, dropout)
        self.patch_frames, self.patch_hop, self.patches_per_pass = patch_frames, patch_hop, patches_per_pass

    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, patches, 1, mels, patch_frames): a random patch per clip in training, else every
        patch at patch_hop frames apart."""
        frames = x.shape[-1]
        if frames < self.patch_frames:
            raise ValueError(
                f"classifier inputs of {frames} frames are shorter than a patch of {self.patch_frames}; "
                "lengthen features.num_samples or shorten classifier.sb_cnn_2017.patch_frames"
            )
        if not self.training:
            return x.unfold(-1, self.patch_frames, self.patch_hop).movedim(-2, 1)
        offsets = torch.randint(0, frames - self.patch_frames + 1, (len(x),), device=x.device)
        index = (offsets[:, None] + torch.arange(self.patch_frames, device=x.device))[:, None, None, :]
        return x.gather(-1, index.expand(*x.shape[:-1], self.patch_frames))[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of each clip's patch in training; log of the mean probabilities over its patches
        in evaluation (so that a softmax of either gives the clip's class probabilities)."""
        patches = self._patches(x)
        if self.training:
            return self.head(self.features(patches[:, 0]))
        flat = patches.flatten(0, 1)
        proba = torch.cat(
            [
                self.head(self.features(flat[i : i + self.patches_per_pass])).float().softmax(-1)
                for i in range(0, len(flat), self.patches_per_pass)
            ]
        )
        return proba.view(len(x), patches.shape[1], -1).mean(1).log()


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


MODELS = ("published_cnn", "sb_cnn", "sb_cnn_2017")
NORMALISE = ("none", "per_band")


@dataclass(frozen=True)
class SBCNNSettings:
    """classifier.sb_cnn: the SB-CNN's conv widths, dense width, dropout and weight decay."""

    widths: list[int]
    hidden: int
    dropout: float
    weight_decay: float


@dataclass(frozen=True)
class SBCNN2017Settings:
    """classifier.sb_cnn_2017: SB-CNN as published, its settings named as the paper names them."""

    widths: list[int]
    hidden: int
    dropout: float
    l2: float
    patch_frames: int
    patch_hop: int


@dataclass(frozen=True)
class NetworkSettings:
    """The classifier settings that rebuild a trained network and predict as its test clips were
    scored: what model.json records. `widths` and `hidden` are the published network's (None for
    an sb_cnn, whose rule params leave them out), `sb_cnn` the SB-CNN's."""

    model: str
    normalise: str
    precision: str
    widths: list[int] | None
    hidden: int | None
    sb_cnn: SBCNNSettings
    sb_cnn_2017: SBCNN2017Settings

    @classmethod
    def from_config(cls, section: dict) -> NetworkSettings:
        """The network of a classifier section (or of model.json's classifier), with the schema's
        defaults for the keys it leaves out."""
        filled = with_defaults("classifier", section)
        published = {key: filled.get(key) for key in ("widths", "hidden")}  # absent for the SB-CNNs
        network = {key: filled[key] for key in ("model", "normalise", "precision")}
        blocks = {
            "sb_cnn": SBCNNSettings(**filled["sb_cnn"]),
            "sb_cnn_2017": SBCNN2017Settings(**filled["sb_cnn_2017"]),
        }
        return cls(**network, **published, **blocks)

    def description(self) -> dict:
        """model.json's classifier: model, normalise, precision and the chosen network's settings."""
        kept = {"model": self.model, "normalise": self.normalise, "precision": self.precision}
        if self.model in ("sb_cnn", "sb_cnn_2017"):
            return kept | {self.model: asdict(getattr(self, self.model))}
        return kept | {"widths": self.widths, "hidden": self.hidden}


@dataclass(frozen=True)
class ClassifierSettings:
    """The classifier section: the network, where it trains (`device`: auto, cpu or cuda) and how."""

    network: NetworkSettings
    device: str
    epochs: int
    batch_size: int
    learning_rate: float
    epoch_choice: str = "validation"
    train_on_validation: bool = False

    @classmethod
    def from_config(cls, section: dict) -> ClassifierSettings:
        """The settings of a classifier section, with the schema's defaults for the keys it leaves out."""
        filled = with_defaults("classifier", section)
        keys = ("device", "epochs", "batch_size", "learning_rate", "epoch_choice", "train_on_validation")
        return cls(network=NetworkSettings.from_config(filled), **{key: filled[key] for key in keys})


def build_classifier(network: NetworkSettings, n_classes: int = 10) -> nn.Module:
    """The network of these settings, freshly initialised from the global generator: `model`
    published_cnn (the published SoundCNN with `widths` and `hidden`) or sb_cnn (SBCNN with the
    `sb_cnn` block), behind a BandNorm when `normalise` is per_band."""
    if network.model == "published_cnn":
        net = SoundCNN(n_classes, network.widths, network.hidden)
    elif network.model == "sb_cnn":
        sb = network.sb_cnn
        net = SBCNN(n_classes, sb.widths, sb.hidden, sb.dropout)
    elif network.model == "sb_cnn_2017":
        sb = network.sb_cnn_2017
        net = SBCNN2017(n_classes, sb.widths, sb.hidden, sb.dropout, sb.patch_frames, sb.patch_hop)
    else:
        raise ValueError(f"classifier.model {network.model!r}: choose one of {', '.join(MODELS)}")
    if network.normalise == "none":
        return net
    if network.normalise == "per_band":
        return Normalised(net)
    raise ValueError(f"classifier.normalise {network.normalise!r}: choose one of {', '.join(NORMALISE)}")


def load_classifier(weights, network: NetworkSettings, n_classes: int = 10) -> nn.Module:
    """Saved weights (safetensors) in the network of these settings, per-band statistics included;
    ValueError naming a tensor that holds NaN or infinity, which would turn every prediction into NaN."""
    tensors = load_tensors(weights)[0]
    if bad := non_finite(tensors.items()):
        raise ValueError(f"{weights}: tensor {bad[0]} holds NaN or infinite values; these weights cannot label")
    model = build_classifier(network, n_classes)
    model.load_state_dict(tensors)
    return model


def shaped(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """`model` with any layer that takes its size from the input built for inputs like `x` (one
    evaluation pass of one clip, which draws no random numbers); before an optimizer sees it."""
    if any(isinstance(m, nn.modules.lazy.LazyModuleMixin) and m.has_uninitialized_params() for m in model.modules()):
        training = model.training
        with torch.no_grad():
            model.eval()(x[:1])
        model.train(training)
    return model


def build_optimizer(model: nn.Module, settings: ClassifierSettings) -> torch.optim.Optimizer:
    """published_cnn: Adam without weight decay, as the published study trained. sb_cnn: AdamW with
    sb_cnn.weight_decay on the conv and dense weights, none on biases and batch-norm parameters.
    sb_cnn_2017: plain SGD, as published, with the L2 penalty `l2` x sum of squares on the weights of
    the two dense layers (a decay of 2 x l2 in SGD's update)."""
    if settings.network.model == "published_cnn":
        return torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    if settings.network.model == "sb_cnn_2017":
        dense = [p for m in model.modules() if isinstance(m, nn.Linear) for p in (m.weight,)]
        others = [p for p in model.parameters() if all(p is not d for d in dense)]
        decay = 2 * settings.network.sb_cnn_2017.l2
        groups = [{"params": dense, "weight_decay": decay}, {"params": others, "weight_decay": 0.0}]
        return torch.optim.SGD(groups, lr=settings.learning_rate)
    decay = settings.network.sb_cnn.weight_decay
    weights = [p for p in model.parameters() if p.ndim > 1]
    others = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": weights, "weight_decay": decay}, {"params": others, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=settings.learning_rate)


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


def training_device(setting: str) -> torch.device:
    """Where a classifier of this device setting (auto, cpu, cuda) trains and predicts."""
    return resolve_device(setting, "classifier.device")


def probabilities(model: nn.Module, x: torch.Tensor, precision: str, device: str) -> torch.Tensor:
    """Class probabilities on the classifier's device (setting) and in the precision it trains in."""
    where = training_device(device)
    with autocast(where, precision, cpu_bf16=True):
        return predict_proba(model.to(where), x)


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predicted == labels).float().mean()) if len(labels) else float("nan")


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Rows are true classes, columns predicted ones."""
    return torch.bincount(labels * n_classes + predicted, minlength=n_classes**2).view(n_classes, n_classes)


def test_metrics(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str, device: str, classes: Sequence[str]
) -> dict:
    """test_accuracy, per_class_accuracy (None for a class without test clips) and confusion_matrix
    of `model` on the test clips (x, y), predicted on the device and in the precision the epochs
    were measured in."""
    predicted = probabilities(model, x, precision, device).argmax(1)
    matrix = confusion_matrix(predicted, y, len(classes))
    per_class = {c: (matrix[i, i] / matrix[i].sum()).item() if matrix[i].sum() else None for i, c in enumerate(classes)}
    return {
        "test_accuracy": accuracy(predicted, y),
        "per_class_accuracy": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def best_epoch_on_test(history: list[dict]) -> dict:
    """The published study's figure: the best test accuracy of any epoch, the epoch chosen on the test
    clips themselves (optimistic)."""
    best = max(history, key=lambda h: h["test_accuracy"])
    return {
        "note": "best epoch chosen on the test clips themselves, as the published study reported; optimistic",
        "best_test_accuracy": best["test_accuracy"],
        "best_epoch": best["epoch"],
    }


def _network_and_inputs(model: nn.Module, inputs: tuple[torch.Tensor, ...], device: torch.device):
    """(the network to train, the inputs on the device): behind a BandNorm, the bare network and the
    inputs normalised once."""
    inputs = [x.to(device) for x in inputs]
    if not isinstance(model, Normalised):
        return model, inputs
    with torch.no_grad():
        return model.net, [model.norm(x) for x in inputs]


class _ClassifierTraining:
    """The state of a network's training, everything a checkpoint holds: weights, optimizer, loss
    scaler, the generators of the epochs' order and of SpecAugment's masks, and the epoch chosen so far."""

    def __init__(self, model: nn.Module, settings: ClassifierSettings, seed: int, device: torch.device):
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.model, self.settings, self.device = model, settings, device
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizer = build_optimizer(model, settings)
        fp16 = reduced_dtype(device, settings.network.precision) == torch.float16
        self.scaler = torch.amp.GradScaler(device.type, enabled=fp16)
        self.best_state, self.best_val, self.chosen, self.history = None, -1.0, 0, []

    def epoch(self, x: torch.Tensor, y: torch.Tensor, augment: Callable | None) -> float:
        """One pass over the training inputs in a shuffled order; returns the mean loss. With fp16's
        loss scaler, whose overflowing batches are skipped by design, the mean of the batches that did
        not overflow (NaN when none did)."""
        self.model.train()
        order = torch.randperm(len(x), generator=self.generator).to(self.device)
        total = torch.zeros((), dtype=torch.float64, device=self.device)  # summed on the device: no sync per batch
        finite, counted = total.clone(), total.clone()
        for start in range(0, len(x), self.settings.batch_size):
            index = order[start : start + self.settings.batch_size]
            batch = augment(x[index]) if augment else x[index]
            with autocast(self.device, self.settings.network.precision, cpu_bf16=True):
                loss = nn.functional.cross_entropy(self.model(batch).float(), y[index])
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += loss.detach().double() * len(index)
            if self.scaler.is_enabled():
                ok = loss.detach().isfinite()
                finite += torch.where(ok, loss.detach().double(), 0.0) * len(index)
                counted += ok * len(index)
        if self.scaler.is_enabled():
            return (finite / counted).item()
        return total.item() / len(x)

    def accuracy(self, x: torch.Tensor, labels: torch.Tensor) -> float:
        precision, device = self.settings.network.precision, self.settings.device
        return accuracy(probabilities(self.model, x, precision, device).argmax(1), labels)

    def record(self, epoch: int, loss: float, val_accuracy: float | None, test_accuracy: float) -> None:
        """Add an epoch to the history; keep its weights if it is the best on validation so far (with
        epoch_choice validation) or the latest (last)."""
        self.history.append(
            {"epoch": epoch, "loss": loss, "val_accuracy": val_accuracy, "test_accuracy": test_accuracy}
        )
        if self.settings.epoch_choice == "last" or val_accuracy > self.best_val:
            self.best_val, self.chosen = val_accuracy, epoch
            self.best_state = {k: v.clone() for k, v in self.model.state_dict().items()}

    def save(self, checkpoint: Checkpoint) -> None:
        opt_tensors, opt_meta = optimizer_state(self.optimizer)
        cuda = self.device.type == "cuda"
        tensors = {
            **with_prefix("model", self.model.state_dict()),
            **with_prefix("best", self.best_state),
            **with_prefix("optimizer", opt_tensors),
            "generator": self.generator.get_state(),
            "rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state()} if cuda else {}),
        }
        state = {
            "history": self.history,
            "best_val": self.best_val,
            "chosen": self.chosen,
            "optimizer": opt_meta,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
        }
        checkpoint.save(tensors, state)

    def restore(self, saved: tuple[dict, dict]) -> None:
        tensors, state = saved
        self.model.load_state_dict(strip_prefix("model", tensors))
        self.best_state = strip_prefix("best", tensors)
        load_optimizer_state(self.optimizer, strip_prefix("optimizer", tensors), state["optimizer"])
        self.generator.set_state(tensors["generator"])
        torch.set_rng_state(tensors["rng"])  # specaugment draws its masks from the global generator
        if "cuda_rng" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["cuda_rng"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.history, self.best_val, self.chosen = state["history"], state["best_val"], state["chosen"]

    def resume(self, checkpoint: Checkpoint | None) -> None:
        """Take up the state that `checkpoint` holds, if any."""
        if saved := (checkpoint.load() if checkpoint else None):
            self.restore(saved)
            log.info("resuming after epoch %d of %d (%s)", len(self.history), self.settings.epochs, checkpoint.path)


def _fresh_model(
    settings: ClassifierSettings, n_classes: int, x: torch.Tensor, norm_inputs: torch.Tensor | None, device
) -> nn.Module:
    """build_classifier's network for inputs like `x`, on `device`; behind a BandNorm, with the
    statistics of `norm_inputs` (default: `x`)."""
    model = shaped(build_classifier(settings.network, n_classes), x)
    if isinstance(model, Normalised):
        model.norm.fit(x if norm_inputs is None else norm_inputs)
    return model.to(device)


def train_classifier(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    settings: ClassifierSettings,
    seed: int,
    n_classes: int = 10,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    checkpoint: Checkpoint | None = None,
    norm_inputs: torch.Tensor | None = None,
):
    """Cross entropy with build_optimizer's optimizer on build_classifier's network; keeps the
    weights of the epoch with the best validation accuracy (`epoch_choice: validation`) or of the
    last epoch (`last`, where `val` may be empty). Returns (model with those weights, history of
    per-epoch dicts, chosen epoch).

    With `normalise: per_band`, the per-band statistics come from `norm_inputs` (default: the
    training inputs), never from validation or test clips; every set is normalised once before
    training, so `augment` (e.g. spec_augment) masks normalised inputs (a masked cell holds its
    band's mean), and the returned model applies the statistics to raw inputs itself.

    With a checkpoint, the state is saved after every epoch (the last too, so that a finished run is
    taken up as it ended) and resumed from, with the result of an uninterrupted run. On CUDA every set
    lives on the device; the precision applies there, and bf16 also on a CPU that computes it natively
    (2.2x faster on the demo, accuracy within noise); a CPU run is byte-reproducible on the same kind
    of CPU. Test accuracy is measured every epoch only to
    report the published protocol's figure (best epoch on test), labelled as such, never to choose anything.
    """
    if settings.epoch_choice == "validation" and not len(val[1]):
        raise ValueError("no validation clips to choose the epoch on; set classifier.epoch_choice: last")
    device = training_device(settings.device)
    torch.manual_seed(seed)
    returned = _fresh_model(settings, n_classes, train[0], norm_inputs, device)
    model, (x, val_x, test_x) = _network_and_inputs(returned, (train[0], val[0], test[0]), device)
    run = _ClassifierTraining(model, settings, seed, device)
    run.resume(checkpoint)
    epochs, y = range(len(run.history) + 1, settings.epochs + 1), train[1].to(device)
    description = f"train classifier (seed {seed})"
    bar = tqdm(epochs, initial=len(run.history), total=settings.epochs, desc=description, mininterval=2)
    for epoch in bar:
        loss = run.epoch(x, y, augment)
        val_accuracy = run.accuracy(val_x, val[1]) if len(val[1]) else None
        require_finite_training(f"{description}, epoch {epoch}", model, loss)
        run.record(epoch, loss, val_accuracy, run.accuracy(test_x, test[1]))
        bar.set_postfix(loss=f"{loss:.3f}", val=f"{val_accuracy or 0:.3f}", refresh=False)
        if checkpoint:
            run.save(checkpoint)
    model.load_state_dict(run.best_state)
    return returned.cpu(), run.history, run.chosen


@dataclass(frozen=True)
class TrainedRun:
    """A trained classifier run: the model with its chosen weights, its history, the chosen epoch,
    the device and precision it ran in, its settings and the checkpoint it resumes from (which the
    caller removes once the run's outputs are written)."""

    model: nn.Module
    history: list[dict]
    chosen: int
    runtime: str
    settings: ClassifierSettings
    seed: int
    checkpoint: Checkpoint

    def record(self, test: tuple, classes: Sequence[str]) -> dict:
        """What metrics.json says of the run: its test metrics on `test` (features, labels, ...),
        chosen epoch, history and where it ran."""
        network = self.settings.network
        return {
            "seed": self.seed,
            "model": network.model,
            **test_metrics(self.model, test[0], test[1], network.precision, self.settings.device, classes),
            "classes": list(classes),
            "chosen_epoch": self.chosen,
            "epoch_choice": self.settings.epoch_choice,
            "val_accuracy": self.history[self.chosen - 1]["val_accuracy"],
            "published_protocol": best_epoch_on_test(self.history),
            "runtime": self.runtime,
            "history": self.history,
        }


def fit(
    sets: dict,
    train: tuple[torch.Tensor, torch.Tensor],
    classifier: dict,
    seed: int,
    classes: Sequence[str],
    checkpoint_path,
    specaugment: dict | None = None,
) -> TrainedRun:
    """train_classifier of a classifier section on `train` (features, labels), masked as the
    `specaugment` section says if given, its epoch chosen on the val part of `sets` (train, val and
    test parts of a split, each features, labels, ids) as the classifier section says, resuming from
    the checkpoint at `checkpoint_path` when it holds this run's state.
    Per-band statistics come from the real training clips (`sets["train"]`), so every arm of a split
    normalises alike and added clips change what is learnt, not the scale of the inputs."""
    settings = ClassifierSettings.from_config(classifier)
    runtime = runtime_signature(training_device(settings.device), settings.network.precision, cpu_bf16=True)
    key = fingerprint(classifier, runtime, specaugment, seed, *train, sets["val"][0], sets["test"][0])
    checkpoint = Checkpoint(checkpoint_path, key)
    augment = spec_augment(specaugment) if specaugment else None
    model, history, chosen = train_classifier(
        train, sets["val"][:2], sets["test"][:2], settings, seed, len(classes), augment, checkpoint, sets["train"][0]
    )
    return TrainedRun(model, history, chosen, runtime, settings, seed, checkpoint)


def training_parts(parts: dict, split: dict, settings: ClassifierSettings) -> dict:
    """The train, val and test `parts` (select_parts of the split) as a classifier of these settings
    uses them: with `train_on_validation`, the validation clips train too and val is empty. Refuses a
    split without validation clips where the epoch is chosen on them."""
    sets = dict(parts)
    if settings.train_on_validation:
        joined = [torch.cat([sets["train"][0], sets["val"][0]]), torch.cat([sets["train"][1], sets["val"][1]])]
        sets["train"] = (*joined, sets["train"][2] + sets["val"][2])
        sets["val"] = (sets["val"][0][:0], sets["val"][1][:0], [])
    elif settings.epoch_choice == "validation" and not sets["val"][2]:
        raise ValueError(
            f"split {split['split']} has no validation clips, so no epoch can be chosen; raise "
            "protocol.val_fraction or set classifier.epoch_choice: last"
        )
    return sets


def classifier_metrics(
    run: TrainedRun, sets: dict, classes: Sequence[str], split_name: str, arm: str, added: int, generated_set
) -> dict:
    """metrics.json of a classifier run: its split, low-data setting and arm, TrainedRun.record on the
    test part of `sets`, its real and `added` training clips and the generated set those come from."""
    return {
        "split": split_name,
        "train_per_class": parse_split_name(split_name)[1],
        "arm": arm,
        **run.record(sets["test"], classes),
        "train_clips": {"real": len(sets["train"][2]), "generated": added},
        "generated_set": generated_set,
    }


def judge_metrics(
    run: TrainedRun, sets: dict, classes: Sequence[str], split_name: str, half: int, held_out_accuracy: float
) -> dict:
    """metrics.json of a judge: its split and half, TrainedRun.record on the test part of `sets`, its
    training clips and the share of the other half's real clips that it labels right."""
    return {
        "split": split_name,
        "half": half,
        **run.record(sets["test"], classes),
        "train_clips": len(sets["train"][2]),
        "held_out_accuracy": held_out_accuracy,
    }


def load_judges(weights: Sequence, settings: ClassifierSettings, n_classes: int) -> list[Callable]:
    """Each weights file's classifier (of these settings) as a function of features to class
    probabilities, on the classifier's device and in its precision."""
    network = settings.network
    models = [load_classifier(path, network, n_classes) for path in weights]
    return [partial(probabilities, model, precision=network.precision, device=settings.device) for model in models]
