"""Figures of the report: accuracy per arm, confusion matrices, real against generated spectrograms."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

from . import CLASSES
from .report import PUBLISHED, labelled_setting, setting_order, shows_published


def accuracy_plot(runs: pd.DataFrame, path, dataset: str) -> None:
    """Per setting of labelled clips: each run as a dot, mean ± std as a bar per variant, and, for
    UrbanSound8K, the published figures as dashed lines."""
    variants = [v for v in dict.fromkeys(["baseline", *runs["variant"]]) if v in set(runs["variant"])]
    settings = sorted(set(runs["labelled_per_class"]), key=setting_order)
    fig = Figure(figsize=(len(settings) * (1.6 + 1.3 * len(variants)), 4.2))
    axes = fig.subplots(1, len(settings), squeeze=False, sharey=True)
    for ax, labelled in zip(axes[0], settings):
        subset = runs[runs["labelled_per_class"] == labelled]
        for i, variant in enumerate(variants):
            acc = 100 * subset.loc[subset["variant"] == variant, "test_accuracy"].to_numpy()
            if not len(acc):
                continue
            ax.bar(i, acc.mean(), yerr=acc.std(ddof=1) if len(acc) > 1 else 0, color="#9ecae1", capsize=6)
            ax.scatter(i + np.linspace(-0.15, 0.15, len(acc)), acc, color="#08519c", zorder=3, s=14)
        for name, value in PUBLISHED.items() if shows_published(dataset) and labelled == "all" else ():
            ax.axhline(100 * value, ls="--", lw=1, color="grey")
            ax.text(
                len(variants) - 0.5,
                100 * value,
                f"published {name} (random split, best epoch on test)",
                va="bottom",
                ha="right",
                fontsize=7,
                color="grey",
            )
        ax.set_xticks(range(len(variants)), variants, rotation=20, ha="right")
        ax.set_title(f"{labelled} labelled clips per class" if labelled != "all" else "all labelled clips", fontsize=10)
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.suptitle("Accuracy per variant (dots: runs; bars: mean ± std)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")


def confusion_plot(metrics: list[dict], path) -> None:
    """Test confusion matrices summed over the runs of each setting of labelled clips and variant,
    rows normalised to 1: a row of panels per setting."""
    setting_of = {m["split"]: labelled_setting(m.get("train_per_class")) for m in metrics}
    settings = sorted(set(setting_of.values()), key=setting_order)
    variants = list(dict.fromkeys(m["variant"] for m in metrics))
    fig = Figure(figsize=(3.6 * len(variants), 3.9 * len(settings)))
    axes = fig.subplots(len(settings), len(variants), squeeze=False)
    for row, setting in zip(axes, settings):
        for ax, variant in zip(row, variants):
            chosen = [m for m in metrics if m["variant"] == variant and setting_of[m["split"]] == setting]
            total = sum((np.asarray(m["confusion_matrix"], float) for m in chosen), np.zeros((len(CLASSES),) * 2))
            share = total / np.maximum(total.sum(axis=1, keepdims=True), 1)
            ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
            ax.set_xticks(range(len(CLASSES)), [c[:8] for c in CLASSES], rotation=90, fontsize=6)
            ax.set_yticks(range(len(CLASSES)), [c[:8] for c in CLASSES], fontsize=6)
            where = "all labelled clips" if setting == "all" else f"{setting} per class"
            accuracy = np.trace(total) / max(total.sum(), 1)
            ax.set_title(f"{variant}, {where} (accuracy {accuracy:.0%})", fontsize=8)
            ax.set_xlabel("predicted", fontsize=7)
        row[0].set_ylabel("true class", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


def examples_plot(real: dict[str, torch.Tensor], generated: dict[str, torch.Tensor], path) -> None:
    """Per class, a real training clip's mel image beside generated ones, in dB, low bands at the bottom."""
    fig = Figure(figsize=(1.5 * len(CLASSES), 3.6))
    axes = fig.subplots(2, len(CLASSES), squeeze=False)
    for column, name in enumerate(CLASSES):
        for row, (label, images) in enumerate((("real", real), ("generated", generated))):
            ax = axes[row][column]
            if name in images:
                ax.imshow(images[name].squeeze().numpy(), origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if column == 0:
                ax.set_ylabel(label, fontsize=8)
        axes[0][column].set_title(name.replace("_", " "), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


def spectrogram_png(image: torch.Tensor, shades: int = 64) -> bytes:
    """A (mels, frames) image in [0, 1] as a PNG of one pixel per bin, low bands at the bottom, in
    `shades` steps of the colour map of the other spectrograms (a palette keeps it to a few kB)."""
    from matplotlib import colormaps
    from PIL import Image

    index = (image.flip(0).clamp(0, 1).numpy() * (shades - 1)).round().astype(np.uint8)
    png = Image.fromarray(index)
    png.putpalette((colormaps["magma"](np.linspace(0, 1, shades))[:, :3] * 255).round().astype(np.uint8).tobytes())
    buffer = io.BytesIO()
    png.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
