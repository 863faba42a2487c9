"""The diffusion model: a diffusers UNet2DModel with a DDIM scheduler, trained on mel images and
saved as an audio-diffusion pipeline folder (unet/, scheduler/, mel/, model_index.json)."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict
from pathlib import Path

import torch
from diffusers import AudioDiffusionPipeline, DDIMScheduler, Mel, UNet2DModel
from tqdm.auto import tqdm

from .audio import fit_length, load_mono
from .checkpoint import Checkpoint, load_optimizer_state, optimizer_state, strip_prefix, with_prefix
from .files import atomic_output
from .mel_image import MelImager, MelSpec

log = logging.getLogger(__name__)


def build_unet(spec: MelSpec, unet: dict) -> UNet2DModel:
    """A UNet for (1, y_res, x_res) images; `unet` gives channels per level and where attention is."""
    channels = tuple(unet["block_out_channels"])
    attention = set(unet.get("attention_levels", []))
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
        norm_num_groups=unet.get("norm_num_groups", 32),
    )


def save_pipeline(
    folder: str | Path,
    unet: UNet2DModel,
    scheduler: DDIMScheduler,
    spec: MelSpec,
    record: dict | None = None,
    vqvae=None,
) -> None:
    """Save an audio-diffusion pipeline folder atomically, with an optional `training.json` record.

    With a `vqvae` (an AutoencoderKL) it is the latent variant: the UNet works on its latents."""
    pipeline = AudioDiffusionPipeline(vqvae=vqvae, unet=unet, mel=Mel(**asdict(spec)), scheduler=scheduler)
    with atomic_output(folder) as tmp:
        pipeline.save_pretrained(tmp, safe_serialization=True)
        if record is not None:
            (tmp / "training.json").write_text(json.dumps(record) + "\n")


def load_pipeline(source: str | Path, device: str | torch.device = "cpu") -> AudioDiffusionPipeline:
    """Load a pipeline folder or hub id; safetensors weights only."""
    pipeline = AudioDiffusionPipeline.from_pretrained(str(source), use_safetensors=True)
    return pipeline.to(device)


def mel_spec_of(pipeline: AudioDiffusionPipeline) -> MelSpec:
    return MelSpec.from_config(dict(pipeline.mel.config))


def saved_mel_spec(folder: str | Path) -> MelSpec:
    """The mel settings of a saved pipeline folder, read without loading its networks."""
    path = Path(folder) / "mel" / "mel_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; {folder} is not an audio-diffusion pipeline folder")
    return MelSpec.from_config(json.loads(path.read_text()))


def is_pretrained(folder: str | Path) -> bool:
    """Whether a results pipeline folder holds an imported pretrained pipeline (trained on 8-bit images)."""
    record = Path(folder) / "training.json"
    return record.is_file() and "pretrained" in json.loads(record.read_text())


def training_images(paths: list[str], spec: MelSpec, max_slices: int = 4) -> torch.Tensor:
    """Mel images of every whole slice of each clip (at least one, zero-padded), up to `max_slices`."""
    imager = MelImager(spec)
    images = []
    with torch.inference_mode():
        for path in tqdm(paths, desc="mel images", mininterval=2):
            audio = load_mono(path, spec.sample_rate)
            n = min(max_slices, max(1, audio.shape[-1] // spec.slice_samples))
            slices = torch.stack([fit_length(audio[i * spec.slice_samples :], spec.slice_samples) for i in range(n)])
            images.append(imager.audio_to_image(slices))
    return torch.cat(images) * 2 - 1  # the UNet works on [-1, 1]


def train_diffusion(
    images: torch.Tensor, spec: MelSpec, settings: dict, device: str = "cpu", checkpoint: Checkpoint | None = None
):
    """Train a UNet to predict the noise added to `images` ([-1, 1]); returns (unet, scheduler, losses).

    With a checkpoint, the state is saved every 5 % of the steps and a saved state is resumed from;
    the result is the same as that of an uninterrupted run.
    """
    torch.manual_seed(settings["seed"])
    generator = torch.Generator().manual_seed(settings["seed"])
    unet = build_unet(spec, settings["unet"]).to(device)
    # Decoding clips each predicted image to [-1, 1]: without it, decodes of interpolated noises
    # drift far out of range (measured: peaks of 5.7 at alpha 0.5 against 1.1 at alpha 0).
    scheduler = DDIMScheduler(num_train_timesteps=settings["num_train_timesteps"], clip_sample=True)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=settings["learning_rate"], weight_decay=1e-4)
    steps, batch = settings["steps"], settings["batch_size"]
    warmup = max(1, steps // 20)
    lr_at = lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps))  # noqa: E731
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    alphas = scheduler.alphas_cumprod.to(device)
    losses, start = [], 0
    saved = checkpoint.load() if checkpoint else None
    if saved:
        tensors, state = saved
        unet.load_state_dict(strip_prefix("unet", tensors))
        load_optimizer_state(optimizer, strip_prefix("optimizer", tensors), state["optimizer"])
        lr_schedule.load_state_dict(state["lr_schedule"])
        generator.set_state(tensors["generator"])
        losses, start = state["losses"], state["step"]
        log.info("resuming from step %d of %d (%s)", start, steps, checkpoint.path)
    every = max(1, steps // 20)
    unet.train()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="train diffusion", mininterval=2)
    for step in bar:
        index = torch.randint(len(images), (batch,), generator=generator)
        x0 = images[index].to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        t = torch.randint(scheduler.config.num_train_timesteps, (batch,), generator=generator).to(device)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = torch.nn.functional.mse_loss(unet(noisy, t).sample, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        lr_schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}", refresh=False)
        if checkpoint and (step + 1) % every == 0 and step + 1 < steps:
            opt_tensors, opt_meta = optimizer_state(optimizer)
            checkpoint.save(
                {
                    **with_prefix("unet", unet.state_dict()),
                    **with_prefix("optimizer", opt_tensors),
                    "generator": generator.get_state(),
                },
                {"step": step + 1, "losses": losses, "optimizer": opt_meta, "lr_schedule": lr_schedule.state_dict()},
            )
    unet.eval()
    return unet.cpu(), scheduler, losses
