"""CUDA checks of generation: determinism on the device, precision effects and raw UNet pass times.

python benchmarks/cuda_check.py      # needs a CUDA device; prints one JSON line at the end
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch
from diffusers import DDIMScheduler
from generation import PUBLISHED  # this folder's generation benchmark

from diffaug.audio import read_audio
from diffaug.dataset import build_manifest
from diffaug.diffusion import build_unet, load_pipeline, save_pipeline
from diffaug.generate import GenerateSettings, generate_class
from diffaug.mel_image import MelSpec
from diffaug.pairs import pairs_table
from diffaug.synthetic import SyntheticSpec, write_synthetic_dataset


def pass_ms(unet, batch: int, dtype, channels_last: bool, repeats: int = 10) -> float:
    """Milliseconds per sample of one UNet pass."""
    unet = unet.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    x = torch.randn(batch, 1, 256, 256, device="cuda")
    x = x.to(memory_format=torch.channels_last) if channels_last else x
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
        for _ in range(3):
            unet(x, 500)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            unet(x, 500)
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats / batch * 1000


def main():
    assert torch.cuda.is_available(), "needs a CUDA device"
    result = {"device": torch.cuda.get_device_name()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = MelSpec(x_res=32, y_res=32, sample_rate=22050, n_fft=2048, hop_length=690)  # the demo mel
        torch.manual_seed(0)
        unet = build_unet(spec, {"block_out_channels": [16, 32, 32], "layers_per_block": 1, "norm_num_groups": 8})
        save_pipeline(tmp / "model", unet, DDIMScheduler(clip_sample=False), spec)
        write_synthetic_dataset(tmp / "data", SyntheticSpec(), progress=False, classes=("siren",))
        clips = build_manifest(tmp / "data")[0]
        outputs = {}
        for name, device, precision in (
            ("cuda_a", "cuda", "bf16"),
            ("cuda_b", "cuda", "bf16"),
            ("cuda_fp32", "cuda", "fp32"),
            ("cpu", "cpu", "fp32"),
        ):
            settings = GenerateSettings.from_config(
                {"device": device, "precision": precision, "steps": 20, "seed": 0, "batch_size": 16, "alpha": 0.5}
            )
            pairs = pairs_table(clips.assign(**{"class": "siren"}), 16, 0)
            generate_class(load_pipeline(tmp / "model"), clips, tmp / name, pairs, settings, 22050, "siren")
            outputs[name] = [read_audio(p)[0] for p in sorted((tmp / name).glob("*.wav"))]
        same = all((tmp / "cuda_a" / p.name).read_bytes() == p.read_bytes() for p in (tmp / "cuda_b").glob("*"))
        result["cuda_runs_byte_identical"] = same

        def gap(a, b):
            return max(float(abs(x - y).max()) for x, y in zip(outputs[a], outputs[b]))

        result["max_abs_diff_bf16_vs_fp32"] = gap("cuda_a", "cuda_fp32")
        result["max_abs_diff_cuda_fp32_vs_cpu"] = gap("cuda_fp32", "cpu")

    unet = build_unet(MelSpec(), PUBLISHED["unet"]).cuda().eval()
    result["published_unet_params_m"] = round(sum(p.numel() for p in unet.parameters()) / 1e6, 1)
    result["ms_per_sample"] = {
        "fp32_b1": pass_ms(unet, 1, None, False),
        "bf16_b64": pass_ms(unet, 64, torch.bfloat16, False),
        "bf16_b64_channels_last": pass_ms(unet, 64, torch.bfloat16, True),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
