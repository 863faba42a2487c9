"""One function per workflow rule, named as the rule: paths and config sections in, files out.

A step's parameters take the names of the config sections it reads (`classifier`, `diffusion`), so a
library function that shares the step's name is called by its module's full name
(`diffaug.classifier.train_classifier`).

The diffusers-based modules, plots and tables are imported only by the steps that use them: they
take seconds to load, and every job pays them.

The scripts under scripts/ only unpack Snakemake's objects and call these, so every step can be
run and tested without Snakemake.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from functools import partial
from pathlib import Path

import pandas as pd
import soundfile as sf
import torch

from .checkpoint import Checkpoint, fingerprint
from .classifier import ClassifierSettings, fit, load_classifier, probabilities
from .confidence import class_scores, judged_scores, most_confident
from .dataset import checked_manifest, download_urbansound8k, read_classes, read_manifest, read_table, write_classes
from .devices import resolve_device, runtime_signature
from .features import (
    FeatureExtractor,
    FeatureSpec,
    load_feature_sets,
    pair_averages,
    require_input_length,
    save_feature_sets,
    select_parts,
)
from .files import atomic_output, save_tensors, worker_processes, write_json, write_text
from .layouts import URBANSOUND8K_METADATA, read_dataset, root_of
from .mel_image import MelSpec
from .predict import describe_model
from .schema import with_defaults
from .splits import halves_of, load_split, make_split, parse_split_name, save_split
from .synthetic import SyntheticSpec, write_synthetic_dataset

log = logging.getLogger(__name__)


def prepare_dataset(*, dataset: dict, metadata: str, threads: int = 1) -> None:
    """Write the synthetic dataset, or download UrbanSound8K where its metadata is missing."""
    root = Path(metadata).parent.parent
    if dataset["source"] == "synthetic":
        spec = SyntheticSpec(**dataset["synthetic"])
        meta = write_synthetic_dataset(root, spec, workers=worker_processes(threads))
        log.info("wrote %d synthetic clips under %s", len(meta), root)
    elif not (root / URBANSOUND8K_METADATA).is_file():
        if not dataset["download"]:
            raise FileNotFoundError(
                f"{root / URBANSOUND8K_METADATA} not found: set dataset.root to an extracted UrbanSound8K "
                "or dataset.download: true"
            )
        log.info("downloading UrbanSound8K into %s", root)
        download_urbansound8k(root)


def manifest(*, index: str, dataset: dict, output: str, rejected_csv: str, classes_txt: str) -> None:
    """The manifest of usable clips of the dataset whose index_file is `index`, in the layout
    `dataset.source`, and its class list in label order (`classes_txt`); with dataset.on_bad_file:
    skip, the unusable files go to `rejected_csv`."""
    root = root_of(dataset, index)
    catalogue = read_dataset(dataset, root)
    table, rejected = checked_manifest(catalogue, root.resolve(), dataset["on_bad_file"], dataset["max_seconds"])
    with atomic_output(rejected_csv) as tmp:
        rejected.to_csv(tmp, index=False)
    with atomic_output(output) as tmp:
        table.to_csv(tmp, index=False)
    write_classes(classes_txt, catalogue.classes)
    folds = sorted(int(fold) for fold in table["fold"].unique())
    log.info("%d clips in %d classes, folds %s", len(table), len(catalogue.classes), folds)
    if len(rejected):
        log.warning("skipped %d unusable file(s), listed in %s", len(rejected), rejected_csv)


def split(*, manifest_csv: str, name: str, protocol: dict, output: str) -> None:
    table = read_manifest(manifest_csv)
    result = make_split(table, name, protocol)
    with atomic_output(output) as tmp:
        save_split(result, tmp)
    log.info("%s: %d train, %d val, %d test clips", name, *(len(result[k]) for k in ("train", "val", "test")))


def features(*, manifest_csv: str, features: dict, output: str, threads: int = 1) -> None:
    """Classifier features of every clip of the dataset, once: splits select their rows."""
    table = read_manifest(manifest_csv)
    extractor = FeatureExtractor(FeatureSpec(**features))
    x = extractor.from_files(table["path"].tolist(), "features", worker_processes(threads))
    save_feature_sets(output, {"all": (x, torch.tensor(table["label"].to_numpy()), table["id"].tolist())})
    log.info("features of %d clips, each %s", len(table), tuple(x.shape[1:]))


def features_generated(
    *, classes_txt: str, class_dirs: list[str], features: dict, output: str, threads: int = 1
) -> None:
    """Classifier features of the clips that the diffusion model made for one set (interpolated or
    reconstructed), listed by each class's pairs.csv and named by their pair."""
    classes = read_classes(classes_txt)
    extractor = FeatureExtractor(FeatureSpec(**features))
    paths, labels, ids = [], [], []
    for folder in class_dirs:
        written = read_table(Path(folder) / "pairs.csv")
        paths += [Path(folder) / f for f in written["file"]]
        labels += [classes.index(c) for c in written["class"]]
        ids += [Path(f).stem for f in written["file"]]
    if paths:
        require_input_length(sf.info(str(paths[0])).frames, FeatureSpec(**features), paths[0])
    x = extractor.from_files(paths, "features generated", worker_processes(threads))
    save_feature_sets(output, {"train": (x, torch.tensor(labels), ids)})


def pairs(*, manifest_csv: str, split_json: str, settings: dict, replicate: int, output: str) -> None:
    """The pairs of one generated set of a split (`settings`: per_class and seed), drawn from its
    training clips within one judge half each: what every generated source uses."""
    from .pairs import pairs_table, replicate_seed

    table = read_manifest(manifest_csv)
    split = load_split(split_json)
    train = table[table["id"].isin(set(split["train"]))]
    chosen = pairs_table(train, settings["per_class"], replicate_seed(settings["seed"], replicate), halves_of(split))
    with atomic_output(output) as tmp:
        chosen.to_csv(tmp, index=False)
    log.info("%d pairs of %d training clips (set %d)", len(chosen), len(train), replicate)


def features_mel_average(*, classes_txt: str, real: str, pairs_csv: str, features: dict, output: str) -> None:
    """Each pair of the set turned into the average, in power, of its two clips' classifier mel
    spectrograms (made with `features`): augmentation without any diffusion model."""
    x, _, ids = load_feature_sets(real)["all"]
    chosen = read_table(pairs_csv)
    averages = pair_averages(x, ids, chosen["source_a"], chosen["source_b"], FeatureSpec(**features))
    classes = read_classes(classes_txt)
    labels = torch.tensor([classes.index(c) for c in chosen["class"]])
    save_feature_sets(output, {"train": (averages, labels, chosen["pair"].tolist())})
    log.info("%d averaged pairs", len(chosen))


def features_round_trip(
    *,
    manifest_csv: str,
    classes_txt: str,
    pairs_csv: str,
    mel: dict | None = None,
    model_dir: str | None = None,
    features: dict,
    seed: int,
    replicate: int,
    output: str,
) -> None:
    """Classifier features of each pair's first clip after only the generating pipeline's mel image
    and Griffin-Lim, no diffusion (one clip per pair, named by it; a clip first in several pairs is
    sent through once): what that round trip alone keeps of each class. The image is `mel_image_of`
    (`mel`, model_dir)."""
    from .diffusion import mel_image_of
    from .generate import round_trip_files
    from .pairs import replicate_seed

    spec = mel_image_of(mel, model_dir)
    extractor = FeatureExtractor(FeatureSpec(**features))
    generator = torch.Generator().manual_seed(replicate_seed(seed, replicate))
    classes, paths = read_classes(classes_txt), read_manifest(manifest_csv).set_index("id")["path"]
    chosen = read_table(pairs_csv)
    xs, labels, names = [], [], []
    for class_name, pairs in chosen.groupby("class", sort=True):
        sources = sorted(set(pairs["source_a"]))
        rebuilt = round_trip_files(paths[sources], spec, features["sample_rate"], generator)
        require_input_length(rebuilt.shape[-1], FeatureSpec(**features), model_dir or "diffusion.mel")
        rebuilt_features = {clip: extractor.from_audio(audio) for clip, audio in zip(sources, rebuilt)}
        xs += [rebuilt_features[clip] for clip in pairs["source_a"]]
        labels += [classes.index(class_name)] * len(pairs)
        names += pairs["pair"].tolist()
    save_feature_sets(output, {"train": (torch.stack(xs), torch.tensor(labels), names)})
    log.info("%d pairs' first clips through the %d x %d mel image and back", len(names), spec.x_res, spec.y_res)


def score_generated(
    *, classes_txt: str, source: str, features: str, pairs_csv: str, judges: list[str], classifier: dict, output: str
) -> None:
    """How the judges label the clips of one source of a generated set: its `features` (one clip per
    pair, named by it), or for source "sources" the pairs' first clips as they are (`features` is
    then the dataset's real features). Each clip is labelled by the judge trained on the other half
    of the training recordings than its pair (`judges`: the weights of half 0 and half 1), which heard
    neither of the pair's clips. One row per clip: its source, intended class, judge, predicted class
    and the probability given to the intended one."""
    settings = ClassifierSettings.from_config(classifier)
    network, device = settings.network, settings.device
    classes = read_classes(classes_txt)
    models = [load_classifier(weights, network, len(classes)) for weights in judges]
    judge = [partial(probabilities, model, precision=network.precision, device=device) for model in models]
    chosen = read_table(pairs_csv).set_index("pair")
    if source == "sources":
        x, _, ids = load_feature_sets(features)["all"]
        row = {clip: i for i, clip in enumerate(ids)}
        labels = torch.tensor([classes.index(c) for c in chosen["class"]])
        x, y, ids = x[torch.tensor([row[c] for c in chosen["source_a"]])], labels, chosen.index.tolist()
    else:
        x, y, ids = load_feature_sets(features)["train"]
    judge_of = (1 - chosen.loc[ids, "half"]).tolist()
    scores = judged_scores(judge, judge_of, x, y, ids, classes).assign(source=source)
    scores = scores[["source", "clip", "class", "judge", "predicted", "confidence"]]
    with atomic_output(output) as tmp:
        scores.to_csv(tmp, index=False)
    share = 100 * (scores["class"] == scores["predicted"]).mean()
    log.info("%s: %.1f %% of %d clips labelled as intended", source, share, len(scores))


def select_generated(
    *, features: str, scores_csv: str, pairs_csv: str, keep: float, output: str, fates_csv: str
) -> None:
    """Keep, per class, the `keep` fraction of a source's clips (one per pair) that their judge gives
    the highest probability of their intended class; `fates_csv` lists every pair with its score and
    fate."""
    x, y, ids = load_feature_sets(features)["train"]
    scores = read_table(scores_csv)
    if list(scores["clip"]) != list(ids):
        raise ValueError(f"{scores_csv} does not list the clips of {features} in order; rerun score_generated")
    scores["kept"] = most_confident(scores, keep)
    index = torch.tensor(scores.index[scores["kept"]].to_numpy())
    save_feature_sets(output, {"train": (x[index], y[index], [ids[i] for i in index.tolist()])})
    chosen = read_table(pairs_csv)
    judged = scores[["clip", "judge", "predicted", "confidence", "kept"]]
    table = chosen.merge(judged, left_on="pair", right_on="clip")
    with atomic_output(fates_csv) as tmp:
        table.drop(columns="clip").to_csv(tmp, index=False)
    log.info("kept %d of %d clips", int(scores["kept"].sum()), len(scores))


def train_diffusion(
    *, manifest_csv: str, split_json: str, diffusion: dict, output: str, init: str | None = None, threads: int = 1
) -> None:
    """Train on the split's training clips: from scratch, or fine-tuning the pipeline folder `init`
    (in its own mel settings)."""
    import diffaug.diffusion

    from .diffusion import DiffusionSettings, load_pipeline, mel_spec_of, save_pipeline, training_images

    table = read_manifest(manifest_csv).set_index("id")
    ids = load_split(split_json)["train"]
    start = load_pipeline(init) if init else None
    if start and start.vqvae is not None:
        raise ValueError(
            f"diffusion.init_from {diffusion['init_from']}: a latent pipeline (with an autoencoder) cannot be "
            "fine-tuned here; use it as it is with diffusion.pretrained"
        )
    spec = mel_spec_of(start) if start else MelSpec(**diffusion["mel"])
    settings = DiffusionSettings.from_config(diffusion)
    device = resolve_device(settings.device, "diffusion.device")
    workers = worker_processes(threads)
    images = training_images(table.loc[ids, "path"].tolist(), spec, diffusion["max_slices"], device, workers)
    log.info(
        "training on %d mel images from %d clips on %s, %s",
        len(images),
        len(ids),
        device,
        f"fine-tuning {diffusion['init_from']}" if start else "from scratch",
    )
    runtime = runtime_signature(device, settings.precision)
    checkpoint = Checkpoint(f"{output}.checkpoint.safetensors", fingerprint(diffusion, runtime, images))
    unet, scheduler, losses = diffaug.diffusion.train_diffusion(
        images,
        spec,
        settings,
        device,
        checkpoint,
        init=start.unet if start else None,
        scheduler=start.scheduler if start else None,
    )
    record = {"images": len(images), "clips": len(ids), "runtime": runtime, "loss": losses}
    if start:
        record["init_from"] = diffusion["init_from"]
    save_pipeline(output, unet, scheduler, spec, record)
    checkpoint.remove()


def import_pretrained(*, source: str, output: str, revision: str | None = None) -> None:
    """Copy a pretrained audio-diffusion pipeline (hub id at `revision`, or folder) into the results,
    in safetensors and with a DDIM scheduler: it generates as it is (diffusion.pretrained) or is
    fine-tuned (diffusion.init_from)."""
    from diffusers import DDIMScheduler

    from .diffusion import load_pipeline, mel_spec_of, save_pipeline

    pipeline = load_pipeline(source, revision=revision)
    try:
        spec = mel_spec_of(pipeline)
    except ValueError as error:
        raise ValueError(f"pretrained pipeline {source}: its mel settings cannot be used: {error}") from None
    log.info("using pretrained pipeline %s (mel %s)", source, spec)
    record = {"pretrained": str(source), "revision": revision, "latent": pipeline.vqvae is not None}
    scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)  # inversion and decoding are DDIM's
    save_pipeline(output, pipeline.unet, scheduler, spec, record, vqvae=pipeline.vqvae)


def interpolate(
    *,
    manifest_csv: str,
    pairs_csv: str,
    model_dir: str,
    class_name: str,
    generate: dict,
    replicate: int,
    output_rate: int,
    output: str,
) -> None:
    """The interpolated clips of one class's pairs in one generated set."""
    _decode_class(manifest_csv, pairs_csv, model_dir, class_name, generate, replicate, output_rate, output)


def reconstruct(
    *,
    manifest_csv: str,
    pairs_csv: str,
    model_dir: str,
    class_name: str,
    generate: dict,
    replicate: int,
    output_rate: int,
    output: str,
) -> None:
    """The reconstructions of one class's pairs in one generated set: each pair's first clip
    inverted and decoded by the same model and settings as interpolation, with nothing mixed in
    (alpha 0)."""
    _decode_class(manifest_csv, pairs_csv, model_dir, class_name, generate, replicate, output_rate, output, mix=False)


def _decode_class(
    manifest_csv, pairs_csv, model_dir, class_name, generate, replicate, output_rate, output, mix=True
) -> None:
    """generate_class on one class's pairs of a set: each pair's two clips slerped, or (`mix` False)
    its first clip alone, as a pair of that clip with itself at alpha 0."""
    from .diffusion import is_pretrained, load_pipeline
    from .generate import GenerateSettings, generate_class
    from .pairs import replicate_seed

    chosen = read_table(pairs_csv)
    chosen = chosen[chosen["class"] == class_name]
    if not mix:
        chosen = chosen.assign(source_b=chosen["source_a"], recording_b=chosen["recording_a"])
    table = read_manifest(manifest_csv)
    clips = table[table["id"].isin(set(chosen["source_a"]) | set(chosen["source_b"]))]
    pipeline = load_pipeline(model_dir)
    settings = GenerateSettings.from_config(generate if mix else {**generate, "alpha": 0.0})
    # A pretrained pipeline learnt from 8-bit images: its inputs get the same rounding.
    quantize = settings.quantize or is_pretrained(model_dir)
    settings = replace(settings, quantize=quantize, seed=replicate_seed(settings.seed, replicate))
    generate_class(pipeline, clips, output, chosen, settings, output_rate, class_name)


def train_classifier(
    *,
    classes_txt: str,
    real: str,
    split_json: str,
    generated: list[str],
    arm: str,
    seed: int,
    split_name: str,
    classifier: dict,
    specaugment: dict | None,
    weights: str,
    metrics: str,
    replicate: int | None = None,
    features: dict,
    description: str,
) -> None:
    """Train one classifier run and write its weights, its metrics and `description` (model.json:
    the class names, `features` and network settings that label new files with the weights alone);
    `replicate` is the generated set that the `generated` features come from, if any."""
    settings = ClassifierSettings.from_config(classifier)
    classes = read_classes(classes_txt)
    split = load_split(split_json)
    sets = training_parts(select_parts(real, split), split, settings)
    x, y, _ = sets["train"]
    n_generated = 0
    for path in generated:
        gx, gy, _ = load_feature_sets(path)["train"]
        x, y, n_generated = torch.cat([x, gx]), torch.cat([y, gy]), n_generated + len(gx)
    run = fit(sets, (x, y), classifier, seed, classes, Path(weights).with_name("checkpoint.safetensors"), specaugment)
    save_tensors(weights, run.model.state_dict())
    write_json(description, describe_model(settings.network, features, classes))
    record = run.record(sets["test"], classes)
    write_json(
        metrics,
        {
            "split": split_name,
            "train_per_class": parse_split_name(split_name)[1],
            "arm": arm,
            **record,
            "train_clips": {"real": len(sets["train"][2]), "generated": n_generated},
            "generated_set": replicate if generated else None,
        },
    )
    log.info(
        "%s %s seed %d: test accuracy %.3f at epoch %d (%s)",
        split_name,
        arm,
        seed,
        record["test_accuracy"],
        run.chosen,
        settings.epoch_choice,
    )
    run.checkpoint.remove()


def train_judge(
    *,
    classes_txt: str,
    real: str,
    split_json: str,
    half: int,
    classifier: dict,
    seed: int,
    weights: str,
    metrics: str,
    held_out_csv: str,
) -> None:
    """A judge of generated clips: a classifier of the baseline's settings trained on one of the
    split's two halves of training recordings (its `judge_halves`), its epoch chosen as the
    baseline's. `held_out_csv` holds how it labels the other half's real training clips, which it
    never heard: the share that an unseen real clip of each class reaches."""
    settings = ClassifierSettings.from_config(classifier)
    classes = read_classes(classes_txt)
    split = load_split(split_json)
    halves = halves_of(split)
    judged = {**split, "train": halves[half], "held_out": halves[1 - half]}
    parts = select_parts(real, judged, ("train", "val", "test", "held_out"))
    sets = training_parts(parts, split, settings)
    run = fit(sets, sets["train"][:2], classifier, seed, classes, Path(weights).with_name("checkpoint.safetensors"))
    x, y, ids = parts["held_out"]
    proba = probabilities(run.model, x, settings.network.precision, settings.device)
    held_out = class_scores(proba, y, ids, classes).assign(judge=half)
    with atomic_output(held_out_csv) as tmp:
        held_out.to_csv(tmp, index=False)
    save_tensors(weights, run.model.state_dict())
    share = float((held_out["class"] == held_out["predicted"]).mean())
    write_json(
        metrics,
        {
            "split": split["split"],
            "half": half,
            **run.record(sets["test"], classes),
            "train_clips": len(sets["train"][2]),
            "held_out_accuracy": share,
        },
    )
    log.info("judge %s half %d: %.1f %% of %d held-out real clips right", split["split"], half, 100 * share, len(ids))
    run.checkpoint.remove()


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


def _by_split(paths: list[str]) -> dict[str, pd.DataFrame]:
    """Tables under results/<stage>/{split}/<set or half>/<name>.csv, concatenated per split."""
    frames: dict[str, list[pd.DataFrame]] = {}
    for path in map(Path, paths):
        frames.setdefault(path.parent.parent.name, []).append(read_table(path))
    return {split: pd.concat(found, ignore_index=True) for split, found in frames.items()}


def _generation_records(records: list[str]) -> dict[str, list[dict]]:
    """training.json of each trained diffusion model and generation.json of each generated or
    reconstructed class (results/reconstructed/...)."""
    found = {"train_diffusion": [], "interpolate": [], "reconstruct": []}
    for folder in map(Path, records):
        if (folder / "training.json").is_file():
            found["train_diffusion"].append(json.loads((folder / "training.json").read_text()))
        if (folder / "generation.json").is_file():
            stage = "reconstruct" if "reconstructed" in folder.parts else "interpolate"
            found[stage].append(json.loads((folder / "generation.json").read_text()))
    return {stage: records for stage, records in found.items() if records or stage != "reconstruct"}


def _diffusion_losses(records: list[str]) -> dict[str, list[float]]:
    """The per-step training loss of each trained diffusion model (results/diffusion/{split}/model), by split."""
    losses = {}
    for folder in map(Path, records):
        record = folder / "training.json"
        if record.is_file():
            loss = json.loads(record.read_text()).get("loss")
            if not loss:
                raise ValueError(f"{record}: no per-step training loss recorded; rerun train_diffusion")
            losses[folder.parent.name] = loss
    return losses


def report(
    *,
    metrics: list[str],
    scores: list[str],
    judges: list[str],
    held_out: list[str],
    records: list[str],
    rejected_csv: str,
    protocol: dict,
    dataset: str,
    replicates: int,
    outputs: dict,
) -> None:
    """The accuracy, per-class, class-fidelity and runtime tables and the accuracy plots.

    `scores` are results/scores/{split}/rep{r}/{source}.csv files (score_generated), `judges` and
    `held_out` the judges' metrics.json and held_out.csv (results/judges/{split}/half{h}/);
    `records` are the trained diffusion models and generated class folders;
    `outputs` maps table, pivot, markdown, per_class, fidelity, runtimes, plot, labelled_plot,
    confusion, classifier_training and, where diffusion models are trained, diffusion_training to
    their paths.
    """
    from .plots import (
        accuracy_plot,
        classifier_training_plot,
        confusion_plot,
        diffusion_training_plot,
        labelled_plot,
    )
    from .report import (
        accuracy_table,
        fidelity_markdown,
        fidelity_table,
        gain_pivot,
        markdown_table,
        per_class_table,
        pivot_markdown,
        protocol_label,
        runs_frame,
        runtime_markdown,
        runtime_table,
    )

    loaded = [json.loads(Path(p).read_text()) for p in metrics]
    runs = runs_frame(loaded)
    table = accuracy_table(runs, protocol_label(with_defaults("protocol", protocol)), dataset)
    skipped = len(pd.read_csv(rejected_csv))
    table.loc[~table["arm"].str.startswith("published"), "skipped_clips"] = skipped
    fidelity = fidelity_table(_by_split(scores), _by_split(held_out))
    judged = [json.loads(Path(p).read_text()) for p in judges]
    runtimes = runtime_table(loaded, {**_generation_records(records), "train_judge": judged})
    pivot = gain_pivot(table)
    frames = {
        "table": table,
        "pivot": pivot,
        "per_class": per_class_table(loaded),
        "fidelity": fidelity,
        "runtimes": runtimes,
    }
    for key, frame in frames.items():
        with atomic_output(outputs[key]) as tmp:
            frame.to_csv(tmp, index=False)
    text = "# Gain per arm and labelled clips\n\n" + pivot_markdown(pivot)
    text += "\n# Accuracy per arm\n\n" + markdown_table(table)
    if replicates > 1:
        text += (
            f"\nEach split has {replicates} generated sets; the k-th classifier seed (counting from 0) "
            f"trains on set k mod {replicates}.\n"
        )
    if skipped:
        text += f"\n{skipped} unusable clip(s) were skipped: see results/data/rejected.csv.\n"
    if len(fidelity):
        text += "\n# Do generated clips keep their class?\n\n" + fidelity_markdown(fidelity)
    text += "\n# Where each stage ran\n\n" + runtime_markdown(runtimes)
    write_text(outputs["markdown"], text)
    with atomic_output(outputs["plot"]) as tmp:
        accuracy_plot(runs, tmp, dataset)
    with atomic_output(outputs["labelled_plot"]) as tmp:
        labelled_plot(runs, tmp)
    with atomic_output(outputs["confusion"]) as tmp:
        confusion_plot(loaded, tmp)
    with atomic_output(outputs["classifier_training"]) as tmp:
        classifier_training_plot(loaded, tmp)
    if "diffusion_training" in outputs:
        with atomic_output(outputs["diffusion_training"]) as tmp:
            diffusion_training_plot(_diffusion_losses(records), tmp)


def listen(
    *,
    manifest_csv: str,
    pairs_csv: str,
    class_dirs: list[str],
    reconstructed_dirs: list[str] = (),
    mel_average: str | None,
    mel: dict | None = None,
    model_dir: str | None = None,
    features: dict,
    seed: int,
    output: str,
) -> None:
    """A page to hear one generated set (`pairs_csv`: results/pairs/{split}/rep{r}.csv): per class, its
    first pairs' real clips, each through the round trip (given the diffusion pipeline's mel image:
    `mel` or `model_dir`, as mel_image_of takes them), the first clip's reconstruction (given
    `reconstructed_dirs`), the interpolated clip (given `class_dirs`) and the mel average (given the
    `mel_average` features)."""
    from .audio import load_mono
    from .diffusion import mel_image_of
    from .generate import round_trip_files
    from .listen import clip, explanations, page, pairs_on_page

    spec = FeatureSpec(**features)
    rate = spec.sample_rate
    drawn = read_table(pairs_csv)
    chosen = pairs_on_page(drawn).to_dict("records")
    paths = read_manifest(manifest_csv).set_index("id")["path"]
    mel = mel_image_of(mel, model_dir) if mel or model_dir else None
    # real clips as far as the generating pipeline reads them (one mel slice), else as the classifier does
    length = round(mel.slice_samples * rate / mel.sample_rate) if mel else spec.num_samples
    wavs = _pair_wavs(chosen, class_dirs, "interpolate")
    reconstructed = _pair_wavs(chosen, reconstructed_dirs, "reconstruct")
    generator = torch.Generator().manual_seed(seed)
    sources = list(dict.fromkeys(pair[f"source_{side}"] for pair in chosen for side in "ab"))
    real = {clip_id: load_mono(paths[clip_id], rate)[:length] for clip_id in sources}
    rebuilt = {}
    if mel:
        audio = round_trip_files(paths[sources], mel, rate, generator)
        rebuilt = {clip_id: a[: len(real[clip_id])] for clip_id, a in zip(sources, audio)}
    averaged = {}
    if mel_average:
        x, _, ids = load_feature_sets(mel_average)["train"]
        row = {pair: i for i, pair in enumerate(ids)}
        if missing := [pair["pair"] for pair in chosen if pair["pair"] not in row]:
            raise ValueError(
                f"{mel_average}: no mel average of pair {missing[0]} of {pairs_csv}; rerun features_mel_average"
            )
        audio = FeatureExtractor(spec).to_audio(x[torch.tensor([row[pair["pair"]] for pair in chosen])], generator)
        averaged = {pair["pair"]: a for pair, a in zip(chosen, audio)}

    classes: dict[str, list] = {}
    for pair in chosen:
        clips = []
        for side in "AB":
            clip_id = pair[f"source_{side.lower()}"]
            clips.append(clip(f"{side}: real", real[clip_id], rate))
            if rebuilt:
                clips.append(clip(f"{side}: round trip", rebuilt[clip_id], rate))
            if reconstructed and side == "A":
                clips.append(clip("A: reconstruction", load_mono(reconstructed[pair["pair"]], rate), rate))
        if wavs:
            clips.append(clip("diffusion: A to B", load_mono(wavs[pair["pair"]], rate), rate))
        if averaged:
            clips.append(clip("mel average of A and B", averaged[pair["pair"]], rate))
        heading = (
            f"pair {pair['pair']}: A = {pair['source_a']} (recording {pair['recording_a']}), "
            f"B = {pair['source_b']} (recording {pair['recording_b']})"
        )
        classes.setdefault(pair["class"], []).append((heading, clips))
    split, replicate = Path(pairs_csv).parent.name, Path(pairs_csv).stem.removeprefix("rep")
    shown = (max(map(len, classes.values())), len(classes), drawn["class"].nunique())
    made = (bool(wavs), bool(averaged), bool(reconstructed))
    notes = explanations(split, replicate, shown, length / rate, mel, spec, *made)
    text = page(f"Listen: split {split}, generated set {replicate}", notes, classes)
    write_text(output, text)
    players = sum(len(clips) for rows in classes.values() for _, clips in rows)
    log.info("%d clips of %d classes on the page (%.1f MB)", players, len(classes), len(text.encode()) / 1e6)


def _pair_wavs(chosen: list[dict], class_dirs: list[str], rule: str) -> dict[str, Path]:
    """{pair: its WAV} in the class folders that `rule` wrote (none without folders)."""
    folders = {Path(folder).name: Path(folder) for folder in class_dirs}
    wavs = {pair["pair"]: folders[pair["class"]] / f"{pair['pair']}.wav" for pair in chosen if folders}
    if missing := [wav for wav in wavs.values() if not wav.is_file()]:
        raise FileNotFoundError(f"{missing[0]}: the clip of pair {missing[0].stem} is missing; rerun {rule}")
    return wavs


def example_images(manifest_csv: str, split_json: str, class_dirs: list[str], spec: MelSpec) -> tuple[dict, dict]:
    """Per class, the mel image (in `spec`'s convention) of its first training clip and of its
    first generated clip."""
    from .audio import load_mono
    from .mel_image import MelImager

    imager = MelImager(spec)

    def image_of(path):
        return imager.audio_to_image(load_mono(path, spec.sample_rate)[None])[0]

    table = read_manifest(manifest_csv)
    train = table[table["id"].isin(set(load_split(split_json)["train"]))].sort_values("id")
    real, generated = {}, {}
    for folder in map(Path, class_dirs):
        files = sorted(folder.glob("*.wav"))
        clips = train[train["class"] == folder.name]
        if files and len(clips):
            real[folder.name] = image_of(clips["path"].iloc[0])
            generated[folder.name] = image_of(files[0])
    return real, generated


def plot_examples(*, manifest_csv: str, split_json: str, class_dirs: list[str], model_dir: str, output: str) -> None:
    """Real and generated mel images per class, side by side, in the generating pipeline's mel settings."""
    from .diffusion import saved_mel_spec
    from .plots import examples_plot

    real, generated = example_images(manifest_csv, split_json, class_dirs, saved_mel_spec(model_dir))
    with atomic_output(output) as tmp:
        examples_plot(real, generated, tmp)
