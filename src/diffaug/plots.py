"""Figures of the report: accuracy per arm, confusion matrices, real against generated spectrograms,
training curves."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
from matplotlib.ticker import MaxNLocator

from .audio import load_mono
from .mel_image import MelImager, MelSpec
from .report import (
    DISTANCES,
    NOVELTY_ORIGINS,
    PUBLISHED,
    labelled_setting,
    runs_frame,
    setting_order,
    shows_published,
)
from .splits import parse_split_name


def accuracy_plot(runs: pd.DataFrame, path, dataset: str) -> None:
    """Per setting of labelled clips: each run as a dot, mean ± std as a bar per arm, and, for
    UrbanSound8K, the published figures as dashed lines, labelled as best-epoch-on-test figures."""
    arms = [v for v in dict.fromkeys(["baseline", *runs["arm"]]) if v in set(runs["arm"])]
    settings = sorted(set(runs["labelled_per_class"]), key=setting_order)
    fig = Figure(figsize=(len(settings) * (1.6 + 1.3 * len(arms)), 4.2))
    axes = fig.subplots(1, len(settings), squeeze=False, sharey=True)
    for ax, labelled in zip(axes[0], settings):
        subset = runs[runs["labelled_per_class"] == labelled]
        for i, arm in enumerate(arms):
            acc = 100 * subset.loc[subset["arm"] == arm, "test_accuracy"].to_numpy()
            if not len(acc):
                continue
            ax.bar(i, acc.mean(), yerr=acc.std(ddof=1) if len(acc) > 1 else 0, color="#9ecae1", capsize=6)
            ax.scatter(i + np.linspace(-0.15, 0.15, len(acc)), acc, color="#08519c", zorder=3, s=14)
        for name, value in PUBLISHED.items() if shows_published(dataset) and labelled == "all" else ():
            ax.axhline(100 * value, ls="--", lw=1, color="grey")
            ax.text(
                len(arms) - 0.5,
                100 * value,
                f"published {name}: best epoch on test (optimistic), random split by clip",
                va="bottom",
                ha="right",
                fontsize=7,
                color="grey",
            )
        ax.set_xticks(range(len(arms)), arms, rotation=20, ha="right")
        ax.set_title(f"{labelled} labelled clips per class" if labelled != "all" else "all labelled clips", fontsize=10)
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.suptitle("Accuracy per arm (dots: runs; bars: mean ± std)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")


def labelled_plot(runs: pd.DataFrame, path) -> None:
    """Test accuracy against labelled clips per class, a line per arm: mean over runs with a
    band of ± one standard deviation; settings evenly spaced, "all" last."""
    settings = sorted(set(runs["labelled_per_class"]), key=setting_order)
    arms = [v for v in dict.fromkeys(["baseline", *runs["arm"]]) if v in set(runs["arm"])]
    fig = Figure(figsize=(2.0 + 1.1 * len(settings), 4.2))
    ax = fig.subplots()
    for arm in arms:
        grouped = runs[runs["arm"] == arm].groupby("labelled_per_class")["test_accuracy"]
        mean, std = grouped.mean() * 100, grouped.std(ddof=1).fillna(0) * 100
        where = [i for i, s in enumerate(settings) if s in mean.index]
        present = [settings[i] for i in where]
        (line,) = ax.plot(where, mean[present], marker="o", label=arm)
        ax.fill_between(where, (mean - std)[present], (mean + std)[present], color=line.get_color(), alpha=0.15)
    ax.set_xticks(range(len(settings)), settings)
    ax.set_xlabel("labelled clips per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against labelled clips (mean over runs, band ± std)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")


def _class_ticks(names: list[str]) -> tuple[list[str], float]:
    """Tick labels and their font size for a confusion matrix of `names`: shorter and smaller as classes grow."""
    width = 8 if len(names) <= 12 else 16
    return [n if len(n) <= width else n[: width - 1] + "…" for n in names], 6 if len(names) <= 12 else 4


def confusion_plot(metrics: list[dict], path) -> None:
    """Test confusion matrices summed over the runs of each setting of labelled clips and arm,
    rows normalised to 1: a row of panels per setting, each panel as large as its classes need."""
    classes = metrics[0]["classes"]
    setting_of = {m["split"]: labelled_setting(m.get("train_per_class")) for m in metrics}
    settings = sorted(set(setting_of.values()), key=setting_order)
    arms = list(dict.fromkeys(m["arm"] for m in metrics))
    side = max(3.6, 0.11 * len(classes) + 1.6)
    fig = Figure(figsize=(side * len(arms), (side + 0.3) * len(settings)))
    axes = fig.subplots(len(settings), len(arms), squeeze=False)
    ticks, size = _class_ticks(classes)
    for row, setting in zip(axes, settings):
        for ax, arm in zip(row, arms):
            runs = [m for m in metrics if m["arm"] == arm and setting_of[m["split"]] == setting]
            total = sum((np.asarray(m["confusion_matrix"], float) for m in runs), np.zeros((len(classes),) * 2))
            share = total / np.maximum(total.sum(axis=1, keepdims=True), 1)
            ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
            ax.set_xticks(range(len(classes)), ticks, rotation=90, fontsize=size)
            ax.set_yticks(range(len(classes)), ticks, fontsize=size)
            where = "all labelled clips" if setting == "all" else f"{setting} per class"
            accuracy = np.trace(total) / max(total.sum(), 1)
            ax.set_title(f"{arm}, {where} (accuracy {accuracy:.0%})", fontsize=8)
            ax.set_xlabel("predicted", fontsize=7)
        row[0].set_ylabel("true class", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


EXAMPLE_COLUMNS = 10
"""Classes per row of the examples plot: more classes wrap onto further rows."""


def example_images(train: pd.DataFrame, class_dirs: list[str], spec: MelSpec) -> tuple[dict, dict]:
    """Per class, the mel image (in `spec`'s convention) of its first training clip (by id, among the
    manifest rows `train`) and of its first generated clip (by name, in its folder of `class_dirs`)."""
    imager = MelImager(spec)

    def image_of(path):
        return imager.audio_to_image(load_mono(path, spec.sample_rate)[None])[0]

    train = train.sort_values("id")
    real, generated = {}, {}
    for folder in map(Path, class_dirs):
        files = sorted(folder.glob("*.wav"))
        clips = train[train["class"] == folder.name]
        if files and len(clips):
            real[folder.name] = image_of(clips["path"].iloc[0])
            generated[folder.name] = image_of(files[0])
    return real, generated


def examples_plot(real: dict[str, torch.Tensor], generated: dict[str, torch.Tensor], path) -> None:
    """Per class (in the order of `real`), a real training clip's mel image above a generated one, in
    dB, low bands at the bottom; ten classes to a row."""
    names = list(real) + [name for name in generated if name not in real]
    columns = min(EXAMPLE_COLUMNS, max(1, len(names)))
    rows = -(-len(names) // columns)
    fig = Figure(figsize=(1.5 * columns, 3.6 * rows))
    axes = fig.subplots(2 * rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for index, name in enumerate(names):
        for kind, (label, images) in enumerate((("real", real), ("generated", generated))):
            ax = axes[2 * (index // columns) + kind][index % columns]
            ax.set_axis_on()
            if name in images:
                ax.imshow(images[name].squeeze().numpy(), origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if index % columns == 0:
                ax.set_ylabel(label, fontsize=8)
        axes[2 * (index // columns)][index % columns].set_title(name.replace("_", " "), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


def _mean_and_band(ax, curves: pd.DataFrame, label: str, color) -> None:
    """A line at the mean of `curves` (a row per run, a column per epoch or step) and, with several
    runs, a band of ± one standard deviation."""
    mean, std = curves.mean(), curves.std(ddof=1)
    ax.plot(curves.columns, mean, color=color, lw=1.4, label=label)
    if len(curves) > 1:
        ax.fill_between(curves.columns, mean - std, mean + std, color=color, alpha=0.2, lw=0)


def _setting_title(labelled: str) -> str:
    return f"{labelled} labelled clips per class" if labelled != "all" else "all labelled clips"


def _per_epoch(history: list[dict], key: str, scale: float) -> dict:
    """{epoch: scale x its `key`}, nan where the epoch has none (no validation clips)."""
    return {h["epoch"]: math.nan if h[key] is None else scale * h[key] for h in history}


def classifier_training_plot(metrics: list[dict], path) -> None:
    """Training loss and validation accuracy per epoch (rows), a column per setting of labelled clips:
    per arm, the mean over its runs (seeds and splits) with a band of ± one standard deviation."""
    setting_of = [labelled_setting(m.get("train_per_class")) for m in metrics]
    settings = sorted(set(setting_of), key=setting_order)
    arms = list(dict.fromkeys(["baseline", *(m["arm"] for m in metrics)]))
    arms = [a for a in arms if any(m["arm"] == a for m in metrics)]
    colors = dict(zip(arms, colormaps["tab10"].colors))
    fig = Figure(figsize=(1.5 + 4.2 * len(settings), 6.2))
    axes = fig.subplots(2, len(settings), squeeze=False, sharex="col")
    for column, labelled in enumerate(settings):
        for arm in arms:
            runs = [m for m, s in zip(metrics, setting_of) if s == labelled and m["arm"] == arm]
            if not runs:
                continue
            for row, (key, scale) in enumerate((("loss", 1), ("val_accuracy", 100))):
                curves = pd.DataFrame([_per_epoch(m["history"], key, scale) for m in runs])
                _mean_and_band(axes[row][column], curves, f"{arm} ({len(runs)} runs)", colors[arm])
        axes[0][column].set_title(_setting_title(labelled), fontsize=10)
        axes[1][column].set_xlabel("epoch")
        axes[1][column].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].set_ylabel("training loss")
    axes[1][0].set_ylabel("validation accuracy (%)")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("Classifier training (lines: mean over runs; bands: ± one std)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


def diffusion_training_plot(losses: dict[str, list[float]], path) -> None:
    """Diffusion training loss per step, a panel per setting of labelled clips: the mean over its
    splits' models, raw (faint) and over a moving window of a fiftieth of the steps, with a band of ±
    one standard deviation over the models when there are several."""
    setting_of = {split: labelled_setting(parse_split_name(split)[1]) for split in losses}
    settings = sorted(set(setting_of.values()), key=setting_order)
    fig = Figure(figsize=(1.2 + 4.2 * len(settings), 3.6))
    axes = fig.subplots(1, len(settings), squeeze=False)
    for ax, labelled in zip(axes[0], settings):
        curves = pd.DataFrame([losses[split] for split in losses if setting_of[split] == labelled])
        curves.columns = range(1, curves.shape[1] + 1)
        window = max(1, curves.shape[1] // 50)
        smooth = curves.T.rolling(window, min_periods=1).mean().T
        ax.plot(curves.columns, curves.mean(), color="#08519c", lw=0.5, alpha=0.3)
        label = f"{len(curves)} model" + "s" * (len(curves) > 1) + (f", mean of {window} steps" if window > 1 else "")
        _mean_and_band(ax, smooth, label, "#08519c")
        ax.set_yscale("log")
        ax.set_title(_setting_title(labelled), fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("noise prediction loss (MSE)")
    fig.suptitle("Diffusion training", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


def novelty_plot(clips: pd.DataFrame, path) -> None:
    """The distributions of each origin's distances to the nearest real training clip (novelty_clips), a
    panel per distance (features, judge's layer), a box per origin, pooled over splits and classes."""
    origins = [origin for origin in NOVELTY_ORIGINS if origin in set(clips["origin"])]
    fig = Figure(figsize=(1.5 + 1.1 * len(origins), 6.4))
    axes = fig.subplots(2, 1, squeeze=False)[:, 0]
    for ax, (column, name) in zip(axes, DISTANCES.items()):
        values = [clips.loc[clips["origin"] == origin, column].dropna().to_numpy() for origin in origins]
        ax.boxplot(values, showfliers=True, flierprops={"markersize": 2})
        ax.set_xticks(range(1, len(origins) + 1), [o.replace("_", " ") for o in origins], fontsize=8)
        reference = np.median(values[0]) if origins[0] == "validation" and len(values[0]) else None
        if reference is not None:
            ax.axhline(reference, color="#999999", lw=0.8, ls="--", label="validation clips' median")
            ax.legend(fontsize=7)
        ax.set_yscale("symlog", linthresh=1)  # long tails above, copies at 0
        ax.set_ylabel(f"distance to nearest\ntraining clip ({name})", fontsize=9)
    fig.suptitle(
        "How new are the clips? (below the validation clips: nearer the training clips than unseen real)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


def report_figures(
    metrics: list[dict],
    dataset: str,
    diffusion_losses: dict[str, list[float]] | None = None,
    novelty: pd.DataFrame | None = None,
) -> dict[str, Callable]:
    """The report's figures by output name, each a function of the path it draws to: of the classifier
    runs' `metrics`, with `diffusion_losses` (by split) the diffusion models' training curves, and with
    `novelty` (novelty_clips) the distributions of the clips' distances to the training clips."""
    runs = runs_frame(metrics)
    figures = {
        "plot": partial(accuracy_plot, runs, dataset=dataset),
        "labelled_plot": partial(labelled_plot, runs),
        "confusion": partial(confusion_plot, metrics),
        "classifier_training": partial(classifier_training_plot, metrics),
    }
    if diffusion_losses is not None:
        figures["diffusion_training"] = partial(diffusion_training_plot, diffusion_losses)
    if novelty is not None:
        figures["novelty"] = partial(novelty_plot, novelty)
    return figures


def spectrogram_png(image: torch.Tensor, shades: int = 16) -> bytes:
    """A (mels, frames) image in [0, 1] as a PNG of one pixel per bin, low bands at the bottom, in
    `shades` steps of the colour map of the other spectrograms: a palette of 16 (5 dB steps over the
    listening page's 80 dB) is stored at 4 bits a pixel, about 1.5 kB for a second of clip."""
    from PIL import Image

    index = (image.flip(0).clamp(0, 1).numpy() * (shades - 1)).round().astype(np.uint8)
    png = Image.fromarray(index)
    png.putpalette((colormaps["magma"](np.linspace(0, 1, shades))[:, :3] * 255).round().astype(np.uint8).tobytes())
    buffer = io.BytesIO()
    png.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
