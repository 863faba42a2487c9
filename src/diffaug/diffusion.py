"""The diffusion model: a diffusers UNet2DModel with a DDIM scheduler, trained on mel images and
saved as an audio-diffusion pipeline folder (unet/, scheduler/, mel/, model_index.json)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from diffusers import AudioDiffusionPipeline, DDIMScheduler, Mel, UNet2DModel
from tqdm.auto import tqdm

from .audio import fit_length, load_mono
from .checkpoint import Checkpoint, load_optimizer_state, optimizer_state, strip_prefix, with_prefix
from .devices import autocast, reduced_dtype
from .files import atomic_output, map_in_workers, save_tensors
from .finite import require_finite_training
from .mel_image import MelImager, MelSpec
from .schema import settings_of, with_defaults

log = logging.getLogger(__name__)


def build_unet(spec: MelSpec, unet: dict, classes: int = 0) -> UNet2DModel:
    """A UNet for (1, y_res, x_res) images; `unet` (diffusion.unet) gives channels per level and
    where attention is. With `classes`, it also takes a class label (0 to classes - 1, or the empty
    label `classes`) through a class embedding added to the timestep's."""
    unet = with_defaults("diffusion.unet", unet)
    channels = tuple(unet["block_out_channels"])
    attention = set(unet["attention_levels"])
    down = tuple("AttnDownBlock2D" if i in attention else "DownBlock2D" for i in range(len(channels)))
    up = tuple("AttnUpBlock2D" if i in attention else "UpBlock2D" for i in reversed(range(len(channels))))
    return UNet2DModel(
        sample_size=(spec.y_res, spec.x_res),
        in_channels=1,
        out_channels=1,
        layers_per_block=unet["layers_per_block"],
        block_out_channels=channels,
        down_block_types=down,
        up_block_types=up,
        norm_num_groups=unet["norm_num_groups"],
        num_class_embeds=classes + 1 if classes else None,
    )


def with_class_embedding(unet: UNet2DModel, classes: int) -> UNet2DModel:
    """An unconditional `unet` with a class embedding added for `classes` classes and the empty label,
    all zero: the embedding is added to the timestep's, so the first step reproduces `unet` exactly."""
    conditional = UNet2DModel.from_config({**unet.config, "num_class_embeds": classes + 1})
    missing, unexpected = conditional.load_state_dict(unet.state_dict(), strict=False)
    if missing != ["class_embedding.weight"] or unexpected:
        raise ValueError(f"cannot add a class embedding to this UNet (missing {missing}, unexpected {unexpected})")
    torch.nn.init.zeros_(conditional.class_embedding.weight)
    return conditional


def class_count(unet: UNet2DModel) -> int:
    """The classes a UNet is conditioned on (0: unconditional); its empty label is this number."""
    return (unet.config.num_class_embeds or 1) - 1 if unet.class_embedding is not None else 0


def save_pipeline(
    folder: str | Path,
    unet: UNet2DModel,
    scheduler: DDIMScheduler,
    spec: MelSpec,
    record: dict | None = None,
    vqvae=None,
    classes: list[str] | None = None,
) -> None:
    """Save an audio-diffusion pipeline folder atomically, with an optional `training.json` record.

    With a `vqvae` (an AutoencoderKL) it is a latent pipeline: the UNet works on its latents. A
    class-conditional UNet's `classes` (names by label) are saved in CLASS_NAMES."""
    if len(classes or []) != class_count(unet):
        raise ValueError(f"a UNet conditioned on {class_count(unet)} classes is saved with {len(classes or [])} names")
    pipeline = AudioDiffusionPipeline(vqvae=vqvae, unet=unet, mel=Mel(**asdict(spec)), scheduler=scheduler)
    with atomic_output(folder) as tmp:
        pipeline.save_pretrained(tmp, safe_serialization=True)
        if record is not None:
            (tmp / "training.json").write_text(json.dumps(record) + "\n")
        if classes:
            (tmp / CLASS_NAMES).write_text(json.dumps({"classes": list(classes)}) + "\n")


CLASS_NAMES = "classes.json"
"""The file of a class-conditional pipeline folder that names its classes, by label."""


def pipeline_classes(folder: str | Path) -> list[str]:
    """The class names of a class-conditional pipeline folder, by label; [] for an unconditional one."""
    path = Path(folder) / CLASS_NAMES
    return json.loads(path.read_text())["classes"] if path.is_file() else []


def load_pipeline(
    location: str | Path, device: str | torch.device = "cpu", revision: str | None = None
) -> AudioDiffusionPipeline:
    """Load a pipeline folder, or a hub id at `revision` (branch, tag or commit; None: the newest).

    Weights load from safetensors; a component published only as a `.bin` file is read as plain
    tensors (`read_bin_weights`) and converted, so nothing is ever unpickled beyond tensors."""
    with safetensors_view(pipeline_folder(location, revision)) as folder:
        pipeline = AudioDiffusionPipeline.from_pretrained(str(folder), use_safetensors=True)
    return pipeline.to(device)


def pipeline_folder(location: str | Path, revision: str | None = None) -> Path:
    """A local pipeline folder as it is, or a hub id's files in the hub cache (downloaded if missing):
    each component's safetensors where the hub has them for every component, else its `.bin` files."""
    if Path(location).is_dir():
        if revision:
            log.warning(
                "diffusion.revision %s applies to hub ids only; the folder %s is used as it is", revision, location
            )
        return Path(location)
    text = str(location)
    if Path(text).is_absolute() or text.startswith((".", "~")) or text.count("/") > 1:
        raise FileNotFoundError(f"{location}: no such pipeline folder (and not a hub id of the form owner/name)")
    return Path(AudioDiffusionPipeline.download(text, revision=revision))


@contextlib.contextmanager
def safetensors_view(folder: Path):
    """`folder` itself where every component's weights are safetensors; else a temporary folder of
    links to its files, each `.bin` weights file replaced by its safetensors conversion."""
    folder = folder.absolute()
    pickled = [path for path in sorted(folder.glob("*/*.bin")) if not path.with_suffix(".safetensors").is_file()]
    if not pickled:
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="pipeline-") as tmp:
        view = Path(tmp) / folder.name
        shutil.copytree(folder, view, ignore=shutil.ignore_patterns("*.bin"), copy_function=os.symlink)
        for path in pickled:
            save_tensors(view / path.relative_to(folder).with_suffix(".safetensors"), read_bin_weights(path))
        yield view


def read_bin_weights(path: Path) -> dict[str, torch.Tensor]:
    """A `.bin` weights file read with `torch.load(weights_only=True)`: tensors in a mapping and
    nothing else. A pickle that holds anything more (code to run included) is refused, naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a refused global, a broken archive or not a pickle at all
        raise ValueError(
            f"{path}: refused: not plain tensor weights ({_load_problem(error)}); nothing in it was run"
        ) from None
    if isinstance(state, dict):
        found = next((f"{k}: {type(v).__name__}" for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    else:
        found = type(state).__name__
    if found:
        raise ValueError(f"{path}: refused: not a mapping of names to tensors (holds {found})")
    return {str(name): tensor.clone() for name, tensor in state.items()}  # clone: no shared storage


def _load_problem(error: Exception) -> str:
    """The line of a torch.load error that says what it met, without its advice to unpickle anyway."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if line.lower().startswith(("trying to load", "unsupported"))]
    return named[0] if named else f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def mel_spec_of(pipeline: AudioDiffusionPipeline) -> MelSpec:
    return MelSpec.from_config(dict(pipeline.mel.config))


def saved_mel_spec(folder: str | Path) -> MelSpec:
    """The mel settings of a saved pipeline folder, read without loading its networks."""
    path = Path(folder) / "mel" / "mel_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; {folder} is not an audio-diffusion pipeline folder")
    return MelSpec.from_config(json.loads(path.read_text()))


def mel_spec_from(mel: dict | None, model_dir: str | Path | None) -> MelSpec:
    """The diffusion pipeline's mel image settings without its weights: `mel` (the config's
    diffusion.mel, for pipelines trained from scratch) or those saved in the imported pipeline
    `model_dir` (diffusion.pretrained or init_from: fine-tuning keeps them)."""
    if (mel is None) == (model_dir is None):
        raise ValueError("give the mel image's settings either as diffusion.mel or as a pipeline folder")
    return MelSpec(**mel) if mel is not None else saved_mel_spec(model_dir)


def is_pretrained(folder: str | Path) -> bool:
    """Whether a results pipeline folder holds an imported pretrained pipeline (trained on 8-bit images)."""
    record = Path(folder) / "training.json"
    return record.is_file() and "pretrained" in json.loads(record.read_text())


def training_images(
    paths: list[str],
    spec: MelSpec,
    max_slices: int = 4,
    device: str | torch.device = "cpu",
    workers: int = 0,
    labels: list[int] | None = None,
):
    """Mel images of every whole slice of each clip (at least one, zero-padded), up to `max_slices`;
    with the clips' `labels`, (images, each image's label).

    `workers` processes decode the files; the images are made on `device`."""
    slices = list(map_in_workers(partial(_clip_slices, spec=spec, max_slices=max_slices), paths, workers, "mel images"))
    imager = MelImager(spec).to(device)
    with torch.inference_mode():
        images = torch.cat([imager.audio_to_image(clip.to(device)).cpu() for clip in slices]) * 2 - 1  # UNet: [-1, 1]
    if labels is None:
        return images
    counts = torch.tensor([len(clip) for clip in slices])
    return images, torch.tensor(labels).repeat_interleave(counts)


def _clip_slices(path: str, spec: MelSpec, max_slices: int) -> torch.Tensor:
    """(slices, slice samples): the whole slices of a clip at the pipeline's rate, at least one."""
    audio = load_mono(path, spec.sample_rate)
    n = min(max_slices, max(1, audio.shape[-1] // spec.slice_samples))
    return torch.stack([fit_length(audio[i * spec.slice_samples :], spec.slice_samples) for i in range(n)])


@dataclass(frozen=True)
class DiffusionSettings:
    """What diffusion training reads of the diffusion section (`unet`: the block build_unet reads;
    `device`: the setting, auto, cpu or cuda)."""

    unet: dict
    num_train_timesteps: int
    steps: int
    batch_size: int
    learning_rate: float
    seed: int
    device: str
    precision: str
    ema_decay: float | None
    label_dropout: float

    @classmethod
    def from_config(cls, section: dict) -> DiffusionSettings:
        """The settings of a diffusion section, with the schema's defaults for the keys it leaves out."""
        return settings_of(cls, "diffusion", section)


def warmup_cosine(steps: int):
    """The learning-rate factor of each step (from 0) of a run of `steps` steps."""
    warmup = max(1, steps // 20)

    def factor(step: int) -> float:
        ramp = min(1.0, (step + 1) / warmup)  # linear warm-up over the first 5 % of the steps
        decay = 0.5 * (1 + math.cos(math.pi * step / steps))  # cosine decay from 1 towards 0 over the whole run
        return ramp * decay

    return factor


OVERFLOW_STREAK = 10
"""Steps in a row whose loss is not finite that stop an fp16 run (one stops any other run)."""


class _Training:
    """The state of a UNet's training, everything a checkpoint holds: optimizer, learning-rate
    schedule, loss scaler, EMA weights, the generator that draws batches, noise, timesteps and (for a
    class-conditional UNet, given the images' `labels`) which labels are dropped."""

    def __init__(self, unet, scheduler, images: torch.Tensor, settings: DiffusionSettings, device, labels=None):
        self.unet, self.scheduler, self.images, self.settings, self.device = unet, scheduler, images, settings, device
        self.labels, self.empty_label = labels, class_count(unet)
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.optimizer = torch.optim.AdamW(unet.parameters(), lr=settings.learning_rate, weight_decay=1e-4)
        fp16 = reduced_dtype(device, settings.precision) == torch.float16
        self.scaler = torch.amp.GradScaler(device.type, enabled=fp16)
        self.ema = None
        if settings.ema_decay:
            from diffusers.training_utils import EMAModel  # a second to import: only where it is used

            self.ema = EMAModel(unet.parameters(), decay=settings.ema_decay, use_ema_warmup=True, power=3 / 4)
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(settings.steps))

    def step(self) -> float:
        """One optimizer step on a batch of noised images; returns its loss."""
        batch, generator, device = self.settings.batch_size, self.generator, self.device
        index = torch.randint(len(self.images), (batch,), generator=generator)
        x0 = self.images[index].to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        t = torch.randint(self.scheduler.config.num_train_timesteps, (batch,), generator=generator).to(device)
        conditioned = {}
        if self.labels is not None:  # drawn after the rest: an unconditional run's draws stay as they were
            dropped = torch.rand(batch, generator=generator) < self.settings.label_dropout
            conditioned["class_labels"] = torch.where(dropped, self.empty_label, self.labels[index]).to(device)
        with autocast(device, self.settings.precision):
            predicted = self.unet(self.scheduler.add_noise(x0, noise, t), t, **conditioned).sample
        loss = torch.nn.functional.mse_loss(predicted.float(), noise)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.lr_schedule.step()
        if self.ema is not None:
            self.ema.step(self.unet.parameters())
        return loss.item()

    def save(self, checkpoint: Checkpoint, step: int, losses: list[float]) -> None:
        """Save the state after `step` steps."""
        opt_tensors, opt_meta = optimizer_state(self.optimizer)
        ema = self.ema
        ema_tensors = {f"ema.{i:05d}": p for i, p in enumerate(ema.shadow_params)} if ema is not None else {}
        tensors = {
            **with_prefix("unet", self.unet.state_dict()),
            **with_prefix("optimizer", opt_tensors),
            **ema_tensors,
            "generator": self.generator.get_state(),
        }
        state = {
            "step": step,
            "losses": losses,
            "optimizer": opt_meta,
            "lr_schedule": self.lr_schedule.state_dict(),
            "ema_step": ema.optimization_step if ema is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
        }
        checkpoint.save(tensors, state)

    def restore(self, saved: tuple[dict, dict]) -> tuple[list[float], int]:
        """Take up a saved state; returns (losses so far, steps done)."""
        tensors, state = saved
        self.unet.load_state_dict(strip_prefix("unet", tensors))
        load_optimizer_state(self.optimizer, strip_prefix("optimizer", tensors), state["optimizer"])
        self.lr_schedule.load_state_dict(state["lr_schedule"])
        self.generator.set_state(tensors["generator"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            shadow = strip_prefix("ema", tensors)
            shadow_params = [shadow[k] for k in sorted(shadow)]
            self.ema.load_state_dict({"optimization_step": state["ema_step"], "shadow_params": shadow_params})
            self.ema.to(self.device)
        return state["losses"], state["step"]


def _new_scheduler(settings: DiffusionSettings) -> DDIMScheduler:
    """The DDIM scheduler of a UNet trained from scratch."""
    # Decoding clips each predicted image to [-1, 1]: without it, decodes of interpolated noises
    # drift far out of range (measured: peaks of 5.7 at alpha 0.5 against 1.1 at alpha 0).
    return DDIMScheduler(num_train_timesteps=settings.num_train_timesteps, clip_sample=True)


def _stop_on_overflow(losses: list[float], fp16: bool, unet: UNet2DModel, step: int) -> None:
    """Stop training where the last loss is not finite; with fp16, whose loss scaler skips an
    overflowing step by design, only where the last OVERFLOW_STREAK are not."""
    streak = OVERFLOW_STREAK if fp16 else 1
    if len(losses) >= streak and not any(map(math.isfinite, losses[-streak:])):
        require_finite_training(f"train diffusion, step {step}", unet, losses[-1])


def tunable_pipeline(folder: str | Path, init_from: str) -> AudioDiffusionPipeline:
    """The imported pipeline `folder` (of diffusion.init_from) to fine-tune; a latent one is refused."""
    start = load_pipeline(folder)
    if start.vqvae is not None:
        raise ValueError(
            f"diffusion.init_from {init_from}: a latent pipeline (with an autoencoder) cannot be "
            "fine-tuned here; use it as it is with diffusion.pretrained"
        )
    return start


def _starting_unet(spec: MelSpec, settings: DiffusionSettings, init: UNet2DModel | None, classes: int, labels):
    """The UNet that training starts from: `init`, given a class embedding where `classes` asks for one
    that it lacks, or a new one; `labels` (the images') must be given exactly when `classes` is."""
    if (labels is None) != (classes == 0):
        raise ValueError("a class-conditional UNet trains on labelled images, an unconditional one on unlabelled")
    if init is None:
        return build_unet(spec, settings.unet, classes)
    if classes and class_count(init) == 0:
        init = with_class_embedding(init, classes)
    if class_count(init) != classes:
        raise ValueError(f"the UNet to fine-tune is conditioned on {class_count(init)} classes, not {classes}")
    return init


def train_diffusion(
    images: torch.Tensor,
    spec: MelSpec,
    settings: DiffusionSettings,
    device: str | torch.device = "cpu",
    checkpoint: Checkpoint | None = None,
    init: UNet2DModel | None = None,
    scheduler: DDIMScheduler | None = None,
    labels: torch.Tensor | None = None,
    classes: int = 0,
):
    """Train a UNet to predict the noise added to `images` ([-1, 1]); returns (unet, scheduler, losses).

    `init` is a UNet to fine-tune (with its pipeline's `scheduler`) instead of a new one built from
    `settings.unet`; with `classes` and each image's `labels`, a class-conditional one (_starting_unet).
    On CUDA, `settings.precision` (bf16, fp16) applies to the UNet's passes. With `settings.ema_decay`,
    the returned UNet holds an exponential moving average of the weights, its decay ramping up as
    1 - (1 + step)^-3/4 to that value. With a checkpoint, the
    state is saved every 5 % of the steps, less often where saving would take over a tenth of the
    time (a published-size UNet's state is about 2 GB), and a saved state is resumed from; the
    result is the same as that of an uninterrupted run.
    """
    device, steps = torch.device(device), settings.steps
    torch.manual_seed(settings.seed)
    unet = _starting_unet(spec, settings, init, classes, labels).to(device)
    scheduler = scheduler if scheduler is not None else _new_scheduler(settings)
    training = _Training(unet, scheduler, images, settings, device, labels)
    saved = checkpoint.load() if checkpoint else None
    losses, start = training.restore(saved) if saved else ([], 0)
    if saved:
        log.info("resuming from step %d of %d (%s)", start, steps, checkpoint.path)
    every, saved_at, save_seconds = max(1, steps // 20), time.perf_counter(), 0.0
    unet.train()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="train diffusion", mininterval=2)
    for step in bar:
        losses.append(training.step())
        _stop_on_overflow(losses, training.scaler.is_enabled(), unet, step + 1)
        bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}", refresh=False)
        due = (step + 1) % every == 0 and time.perf_counter() - saved_at >= 10 * save_seconds
        if checkpoint and due and step + 1 < steps:
            require_finite_training(f"train diffusion, step {step + 1}", unet)
            started = time.perf_counter()
            training.save(checkpoint, step + 1, losses)
            saved_at = time.perf_counter()
            save_seconds = saved_at - started
    require_finite_training(f"train diffusion, step {steps}", unet)
    if training.ema is not None:
        training.ema.copy_to(unet.parameters())
    unet.eval()
    return unet.cpu(), scheduler, losses
