"""One function per workflow rule: paths and config sections in, files out.

The diffusers-based modules are imported only by the steps that use them: they take seconds to load.

The scripts under scripts/ only unpack Snakemake's objects and call these, so every step can be
run and tested without Snakemake.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import torch

from . import CLASSES
from .classifier import accuracy, confusion_matrix, predict, train_classifier
from .dataset import build_manifest, download_urbansound8k, METADATA_FILE
from .features import FeatureExtractor, FeatureSpec, load_feature_sets, save_feature_sets
from .files import atomic_output, save_tensors, write_json, write_text
from .mel_image import MelSpec
from .report import accuracy_plot, accuracy_table, markdown_table, per_class_table, runs_frame
from .splits import load_split, make_split, save_split
from .synthetic import SyntheticSpec, write_synthetic_dataset

log = logging.getLogger(__name__)


def prepare_dataset(dataset: dict, metadata: str) -> None:
    """Write the synthetic dataset, or check (and optionally download) UrbanSound8K."""
    root = Path(metadata).parent.parent
    if dataset["source"] == "synthetic":
        spec = SyntheticSpec(**dataset["synthetic"])
        meta = write_synthetic_dataset(root, spec)
        log.info("wrote %d synthetic clips under %s", len(meta), root)
    elif not (root / METADATA_FILE).is_file():
        if not dataset["download"]:
            raise FileNotFoundError(f"{root / METADATA_FILE} not found: set dataset.root to an extracted UrbanSound8K or dataset.download: true")
        log.info("downloading UrbanSound8K into %s", root)
        download_urbansound8k(root)


def manifest(metadata: str, output: str) -> None:
    root = Path(metadata).parent.parent
    table = build_manifest(root)
    with atomic_output(output) as tmp:
        table.to_csv(tmp, index=False)
    log.info("%d clips in %d classes, folds %s", len(table), table["class"].nunique(), sorted(table["fold"].unique()))


def split(manifest_csv: str, name: str, protocol: dict, output: str) -> None:
    table = pd.read_csv(manifest_csv)
    result = make_split(table, name, protocol)
    with atomic_output(output) as tmp:
        save_split(result, tmp)
    log.info("%s: %d train, %d val, %d test clips", name, *(len(result[k]) for k in ("train", "val", "test")))


def features_real(manifest_csv: str, split_json: str, features: dict, output: str) -> None:
    """Classifier features of every clip of one split, by part (train, val, test)."""
    table = pd.read_csv(manifest_csv).set_index("id")
    parts = load_split(split_json)
    extractor = FeatureExtractor(FeatureSpec(**features))
    sets = {}
    for part in ("train", "val", "test"):
        ids = parts[part]
        x = extractor.from_files(table.loc[ids, "path"].tolist(), desc=f"features {part}")
        sets[part] = (x, torch.tensor(table.loc[ids, "classID"].to_numpy()), ids)
    save_feature_sets(output, sets)


def features_generated(class_dirs: list[str], features: dict, output: str) -> None:
    """Classifier features of the generated clips of one split, listed by each class's pairs.csv."""
    extractor = FeatureExtractor(FeatureSpec(**features))
    paths, labels, ids = [], [], []
    for folder in class_dirs:
        pairs = pd.read_csv(Path(folder) / "pairs.csv")
        paths += [Path(folder) / f for f in pairs["file"]]
        labels += [CLASSES.index(c) for c in pairs["class"]]
        ids += [f"{Path(folder).name}/{f}" for f in pairs["file"]]
    x = extractor.from_files(paths, desc="features generated")
    save_feature_sets(output, {"train": (x, torch.tensor(labels), ids)})


def train_diffusion(manifest_csv: str, split_json: str, diffusion: dict, output: str) -> None:
    """Train on the split's training clips."""
    from .diffusion import save_pipeline, train_diffusion as fit_diffusion, training_images
    from .generate import resolve_device

    table = pd.read_csv(manifest_csv).set_index("id")
    ids = load_split(split_json)["train"]
    spec = MelSpec(**diffusion["mel"])
    images = training_images(table.loc[ids, "path"].tolist(), spec, diffusion["max_slices"])
    device = resolve_device("auto")
    log.info("training on %d mel images from %d clips on %s", len(images), len(ids), device)
    unet, scheduler, losses = fit_diffusion(images, spec, diffusion, str(device))
    save_pipeline(output, unet, scheduler, spec, {"images": len(images), "clips": len(ids), "loss": losses})


def import_pretrained(source: str, output: str) -> None:
    """Copy a pretrained audio-diffusion pipeline (hub id or folder) into the results."""
    from .diffusion import load_pipeline, mel_spec_of, save_pipeline

    pipeline = load_pipeline(source)
    spec = mel_spec_of(pipeline)
    log.info("using pretrained pipeline %s (mel %s)", source, spec)
    save_pipeline(output, pipeline.unet, pipeline.scheduler, spec, {"pretrained": str(source)})


def interpolate(manifest_csv: str, split_json: str, model_dir: str, class_name: str, generate: dict,
                output_rate: int, output: str) -> None:
    from .diffusion import load_pipeline
    from .generate import generate_class

    table = pd.read_csv(manifest_csv)
    train_ids = set(load_split(split_json)["train"])
    clips = table[table["id"].isin(train_ids) & (table["class"] == class_name)]
    pipeline = load_pipeline(model_dir)
    generate_class(pipeline, clips, output, generate["per_class"], generate, output_rate, class_name)


def train(real: str, generated: list[str], variant: str, seed: int, split_name: str, classifier: dict,
          weights: str, metrics: str) -> None:
    """Train one classifier run and write its weights and metrics."""
    sets = load_feature_sets(real)
    x, y, _ = sets["train"]
    n_generated = 0
    for path in generated:
        gx, gy, _ = load_feature_sets(path)["train"]
        x, y, n_generated = torch.cat([x, gx]), torch.cat([y, gy]), n_generated + len(gx)
    if len(sets["val"][2]) == 0:
        raise ValueError(f"{real}: the split has no validation clips, so no epoch can be chosen; raise protocol.val_fraction")
    model, history, chosen = train_classifier((x, y), sets["val"][:2], sets["test"][:2], classifier, seed, len(CLASSES))
    test_x, test_y, _ = sets["test"]
    predicted = predict(model, test_x)
    matrix = confusion_matrix(predicted, test_y, len(CLASSES))
    per_class = {c: (matrix[i, i] / matrix[i].sum()).item() if matrix[i].sum() else None for i, c in enumerate(CLASSES)}
    best = max(history, key=lambda h: h["test_accuracy"])
    save_tensors(weights, model.state_dict())
    write_json(
        metrics,
        {
            "split": split_name,
            "variant": variant,
            "seed": seed,
            "test_accuracy": accuracy(predicted, test_y),
            "per_class_accuracy": per_class,
            "confusion_matrix": matrix.tolist(),
            "classes": list(CLASSES),
            "chosen_epoch": chosen,
            "val_accuracy": history[chosen - 1]["val_accuracy"],
            "seed_style": {
                "note": "best epoch chosen on the test clips themselves, as the seed project reported; optimistic",
                "best_test_accuracy": best["test_accuracy"],
                "best_epoch": best["epoch"],
            },
            "train_clips": {"real": len(sets["train"][2]), "generated": n_generated},
            "history": history,
        },
    )
    log.info("%s %s seed %d: test accuracy %.3f at epoch %d (chosen on validation)", split_name, variant, seed,
             accuracy(predicted, test_y), chosen)


def report(metrics: list[str], protocol: dict, table_csv: str, table_md: str, per_class_csv: str, plot: str) -> None:
    loaded = [json.loads(Path(p).read_text()) for p in metrics]
    runs = runs_frame(loaded)
    table = accuracy_table(runs, protocol["kind"])
    with atomic_output(table_csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_output(per_class_csv) as tmp:
        per_class_table(loaded).to_csv(tmp, index=False)
    write_text(table_md, "# Accuracy per variant\n\n" + markdown_table(table))
    with atomic_output(plot) as tmp:
        accuracy_plot(runs, tmp)
