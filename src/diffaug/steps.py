"""One function per workflow rule, named as the rule: it reads the rule's files and config sections,
calls the modules that compute, and writes what they return.

A step's parameters take the names of the config sections it reads (`classifier`, `diffusion`), so a
library function that shares the step's name is called by its module's full name
(`diffaug.classifier.train_classifier`).

The diffusers-based modules, plots and tables are imported only by the steps that use them: they
take seconds to load, and every job pays them.

The scripts under scripts/ only unpack Snakemake's objects and call these, so every step can be
run and tested without Snakemake.
"""

from __future__ import annotations

import logging
from itertools import chain
from pathlib import Path

import pandas as pd
import soundfile as sf
import torch

from .checkpoint import Checkpoint, fingerprint
from .classifier import (
    ClassifierSettings,
    classifier_metrics,
    fit,
    judge_metrics,
    load_classifier,
    load_judges,
    probabilities,
    training_parts,
)
from .confidence import class_scores, most_confident, other_half_scores, pair_fates, share_as_intended
from .dataset import checked_manifest, download_urbansound8k, read_classes, read_manifest, read_table, write_classes
from .devices import resolve_device, runtime_signature
from .features import (
    FeatureExtractor,
    FeatureSpec,
    first_clips,
    load_feature_sets,
    pair_averages,
    require_input_length,
    save_feature_sets,
    select_parts,
    with_added_sets,
)
from .files import atomic_output, read_json, save_tensors, worker_processes, write_json, write_table, write_text
from .layouts import URBANSOUND8K_METADATA, read_dataset, root_of
from .mel_image import MelSpec
from .pairs import generated_clips, generated_set_of_pairs, generated_set_seed, pair_wavs, pairs_table
from .predict import describe_model
from .schema import with_defaults
from .splits import clips_in, halves_of, judge_split, load_split, make_split, save_split
from .synthetic import SyntheticSpec, write_synthetic_dataset

log = logging.getLogger(__name__)


def prepare_dataset(*, dataset: dict, metadata: str, threads: int = 1) -> None:
    """Write the synthetic dataset, or download UrbanSound8K where its metadata is missing."""
    root = Path(metadata).parent.parent
    if dataset["layout"] == "synthetic":
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
    `dataset.layout`, and its class list in label order (`classes_txt`); with dataset.on_bad_file:
    skip, the unusable files go to `rejected_csv`."""
    root = root_of(dataset, index)
    catalogue = read_dataset(dataset, root)
    table, rejected = checked_manifest(catalogue, root.resolve(), dataset["on_bad_file"], dataset["max_seconds"])
    write_table(rejected_csv, rejected)
    write_table(output, table)
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
    spec = FeatureSpec(**features)
    extractor = FeatureExtractor(spec)
    paths, labels, ids = generated_clips(class_dirs, classes)
    if paths:
        require_input_length(sf.info(str(paths[0])).frames, spec, paths[0])
    x = extractor.from_files(paths, "features generated", worker_processes(threads))
    save_feature_sets(output, {"train": (x, torch.tensor(labels), ids)})


def pairs(*, manifest_csv: str, split_json: str, settings: dict, generated_set: int, output: str) -> None:
    """The pairs of one generated set of a split (`settings`: pairs_per_class and seed), drawn from its
    training clips within one judge half each: what every generator uses."""
    table = read_manifest(manifest_csv)
    split = load_split(split_json)
    train = clips_in(table, split)
    drawn = pairs_table(
        train, settings["pairs_per_class"], generated_set_seed(settings["seed"], generated_set), halves_of(split)
    )
    write_table(output, drawn)
    log.info("%d pairs of %d training clips (set %d)", len(drawn), len(train), generated_set)


def features_mel_average(*, classes_txt: str, real: str, pairs_csv: str, features: dict, output: str) -> None:
    """Each pair of the set turned into the average, in power, of its two clips' classifier mel
    spectrograms (made with `features`): augmentation without any diffusion model."""
    x, _, ids = load_feature_sets(real)["all"]
    pairs = read_table(pairs_csv)
    averages = pair_averages(x, ids, pairs["source_a"], pairs["source_b"], FeatureSpec(**features))
    classes = read_classes(classes_txt)
    labels = torch.tensor([classes.index(c) for c in pairs["class"]])
    save_feature_sets(output, {"train": (averages, labels, pairs["pair"].tolist())})
    log.info("%d averaged pairs", len(pairs))


def features_round_trip(
    *,
    manifest_csv: str,
    classes_txt: str,
    pairs_csv: str,
    mel: dict | None = None,
    model_dir: str | None = None,
    features: dict,
    seed: int,
    generated_set: int,
    output: str,
) -> None:
    """Classifier features of each pair's first clip after only the generating pipeline's mel image
    and Griffin-Lim, no diffusion (one clip per pair, named by it; a clip first in several pairs is
    sent through once): what that round trip alone keeps of each class. The image is `mel_spec_from`
    (`mel`, model_dir)."""
    from .diffusion import mel_spec_from
    from .generate import round_trip_features

    spec = mel_spec_from(mel, model_dir)
    generator = torch.Generator().manual_seed(generated_set_seed(seed, generated_set))
    classes, paths = read_classes(classes_txt), read_manifest(manifest_csv).set_index("id")["path"]
    pairs = read_table(pairs_csv)
    where = model_dir or "diffusion.mel"
    x, y, names = round_trip_features(pairs, paths, spec, FeatureSpec(**features), classes, generator, where)
    save_feature_sets(output, {"train": (x, y, names)})
    log.info("%d pairs' first clips through the %d x %d mel image and back", len(names), spec.x_res, spec.y_res)


def score_generated(
    *, classes_txt: str, origin: str, features: str, pairs_csv: str, judges: list[str], classifier: dict, output: str
) -> None:
    """How the judges label the clips of one generator of a generated set: its `features` (one clip per
    pair, named by it), or for the origin "sources" the pairs' first clips as they are (`features` is
    then the dataset's real features). Each clip is labelled by the judge trained on the other half
    of the training recordings than its pair (`judges`: the weights of half 0 and half 1), which heard
    neither of the pair's clips. One row per clip: its origin, intended class, judge, predicted class
    and the probability given to the intended one."""
    classes = read_classes(classes_txt)
    judge = load_judges(judges, ClassifierSettings.from_config(classifier), len(classes))
    pairs = read_table(pairs_csv).set_index("pair")
    clips = first_clips(features, pairs, classes) if origin == "sources" else load_feature_sets(features)["train"]
    scores = other_half_scores(origin, judge, pairs, clips, classes)
    write_table(output, scores)
    share = 100 * share_as_intended(scores)
    log.info("%s: %.1f %% of %d clips labelled as intended", origin, share, len(scores))


def novelty(
    *,
    classes_txt: str,
    real: str,
    split_json: str,
    pairs_csvs: list[str],
    scored: list[str],
    judges: list[str],
    classifier: dict,
    in_db: bool,
    output: str,
) -> None:
    """How new the clips of a split are: each clip's distance to the nearest real training clip of the
    split (novelty.TrainingClips), in classifier features (`in_db`: they are in dB already) and in the
    penultimate layer of its judge (`judges`: half 0's and half 1's weights). One row per clip of every
    generated set k (`pairs_csvs[k]`): of each scored origin (`scored`: its features,
    results/features/{split}/set{k}/{origin}.safetensors), judged as score_generated judges it; of the
    pairs' first clips as they are (origin sources: training clips, against the other training clips);
    and, once per judge, the split's validation clips (origin validation: whole recordings that neither
    the diffusion model nor the judges trained on)."""
    from .novelty import TrainingClips

    classes = read_classes(classes_txt)
    settings = ClassifierSettings.from_config(classifier)
    models = [load_classifier(path, settings.network, len(classes)) for path in judges]
    parts = select_parts(real, load_split(split_json), ("train", "val"))
    train_x, train_y, train_ids = parts["train"]
    train = TrainingClips(train_x, models, settings, in_db)
    row = {clip: i for i, clip in enumerate(train_ids)}
    tables = []
    for generated_set, pairs_csv in enumerate(pairs_csvs):
        pairs = read_table(pairs_csv).set_index("pair")
        first = [row[clip] for clip in pairs["source_a"]]  # the pairs' first clips are training clips
        sources = (train_x[first], train_y[first], pairs.index.tolist())
        of_set = [path for path in scored if Path(path).parent.name == f"set{generated_set}"]
        made = ((Path(path).stem, load_feature_sets(path)["train"], None) for path in of_set)  # read in turn
        for origin, (x, y, ids), exclude in chain([("sources", sources, first)], made):
            judge_of = (1 - pairs.loc[ids, "half"]).tolist()
            named = _clip_rows(ids, y, classes, judge_of).assign(set=generated_set, origin=origin)
            tables.append(named.join(train.distances(x, judge_of, exclude)))
    x, y, ids = parts["val"]
    for judge in range(len(models)):
        named = _clip_rows(ids, y, classes, [judge] * len(ids)).assign(origin="validation")
        tables.append(named.join(train.distances(x, [judge] * len(ids))))
    table = pd.concat(tables, ignore_index=True)
    write_table(output, table[["set", "origin", "clip", "class", "judge", "feature_distance", "judge_distance"]])
    medians = table.groupby("origin", sort=False)["feature_distance"].median().round(1).to_dict()
    log.info("median distance to the nearest training clip in features, by origin: %s", medians)


def _clip_rows(ids: list[str], labels: torch.Tensor, classes: list[str], judge_of: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"clip": ids, "class": [classes[i] for i in labels.tolist()], "judge": judge_of})


def select_generated(
    *, features: str, scores_csv: str, pairs_csv: str, keep: float, output: str, fates_csv: str
) -> None:
    """Keep, per class, the `keep` fraction of a generator's clips (one per pair) that their judge gives
    the highest probability of their intended class; `fates_csv` lists every pair with its score and
    fate."""
    x, y, ids = load_feature_sets(features)["train"]
    scores = read_table(scores_csv)
    if list(scores["clip"]) != list(ids):
        raise ValueError(f"{scores_csv} does not list the clips of {features} in order; rerun score_generated")
    scores["kept"] = most_confident(scores, keep)
    index = torch.tensor(scores.index[scores["kept"]].to_numpy())
    save_feature_sets(output, {"train": (x[index], y[index], [ids[i] for i in index.tolist()])})
    write_table(fates_csv, pair_fates(read_table(pairs_csv), scores))
    log.info("kept %d of %d clips", int(scores["kept"].sum()), len(scores))


def train_diffusion(
    *,
    manifest_csv: str,
    split_json: str,
    diffusion: dict,
    output: str,
    init: str | None = None,
    classes_txt: str | None = None,
    threads: int = 1,
) -> None:
    """Train on the split's training clips: from scratch, or fine-tuning the pipeline folder `init`
    (in its own mel settings); with diffusion.conditioning class, conditioned on the clips' classes
    (`classes_txt`, saved with the pipeline)."""
    import diffaug.diffusion

    from .diffusion import DiffusionSettings, mel_spec_of, save_pipeline, training_images, tunable_pipeline

    table = read_manifest(manifest_csv).set_index("id")
    ids = load_split(split_json)["train"]
    start = tunable_pipeline(init, diffusion["init_from"]) if init else None
    classes = _conditioning_classes(diffusion, classes_txt, init)
    spec = mel_spec_of(start) if start else MelSpec(**diffusion["mel"])
    settings = DiffusionSettings.from_config(diffusion)
    device = resolve_device(settings.device, "diffusion.device")
    paths = table.loc[ids, "path"].tolist()
    labelled = {"labels": table.loc[ids, "label"].tolist()} if classes else {}
    made = training_images(paths, spec, diffusion["max_slices"], device, worker_processes(threads), **labelled)
    images, labels = made if classes else (made, None)
    how = f"fine-tuning {diffusion['init_from']}" if start else "from scratch"
    conditioned = f", conditioned on {len(classes)} classes" if classes else ""
    log.info("training on %d mel images from %d clips on %s, %s%s", len(images), len(ids), device, how, conditioned)
    runtime = runtime_signature(device, settings.precision)
    key = fingerprint(diffusion, runtime, images, *([labels, classes] if classes else []))
    checkpoint = Checkpoint(f"{output}.checkpoint.safetensors", key)
    tuned = {"init": start.unet, "scheduler": start.scheduler} if start else {}
    unet, scheduler, losses = diffaug.diffusion.train_diffusion(
        images, spec, settings, device, checkpoint, **tuned, labels=labels, classes=len(classes)
    )
    record = {"images": len(images), "clips": len(ids), "runtime": runtime, "loss": losses}
    tuned_from = {"init_from": diffusion["init_from"]} if start else {}
    save_pipeline(output, unet, scheduler, spec, record | tuned_from, classes=classes)
    checkpoint.remove()


def _conditioning_classes(diffusion: dict, classes_txt: str | None, init: str | None) -> list[str]:
    """The classes that diffusion training conditions on ([] unless diffusion.conditioning is class); a
    conditional pipeline to fine-tune (`init`) must know the same ones, in the same order."""
    from .diffusion import pipeline_classes

    classes = read_classes(classes_txt) if with_defaults("diffusion", diffusion)["conditioning"] == "class" else []
    imported = pipeline_classes(init) if init else []
    if imported and imported != classes:
        raise ValueError(
            f"diffusion.init_from {diffusion['init_from']}: conditioned on {imported}, not on this dataset's classes "
            f"{classes}"
        )
    return classes


def import_pretrained(*, pipeline: str, output: str, revision: str | None = None) -> None:
    """Copy a pretrained audio-diffusion pipeline (hub id at `revision`, or folder) into the results,
    in safetensors and with a DDIM scheduler: it generates as it is (diffusion.pretrained) or is
    fine-tuned (diffusion.init_from)."""
    from diffusers import DDIMScheduler

    from .diffusion import load_pipeline, mel_spec_of, save_pipeline

    loaded = load_pipeline(pipeline, revision=revision)
    try:
        spec = mel_spec_of(loaded)
    except ValueError as error:
        raise ValueError(f"pretrained pipeline {pipeline}: its mel settings cannot be used: {error}") from None
    log.info("using pretrained pipeline %s (mel %s)", pipeline, spec)
    record = {"pretrained": str(pipeline), "revision": revision, "latent": loaded.vqvae is not None}
    scheduler = DDIMScheduler.from_config(loaded.scheduler.config)  # inversion and decoding are DDIM's
    save_pipeline(output, loaded.unet, scheduler, spec, record, vqvae=loaded.vqvae)


def interpolate(
    *,
    manifest_csv: str,
    pairs_csv: str,
    model_dir: str,
    class_dirs: list[str],
    generate: dict,
    generated_set: int,
    output_rate: int,
) -> None:
    """The interpolated clips of one generated set, a folder per class (`class_dirs`, each named by its
    class), the pipeline loaded once."""
    _decode_classes(manifest_csv, pairs_csv, model_dir, class_dirs, generate, generated_set, output_rate)


def reconstruct(
    *,
    manifest_csv: str,
    pairs_csv: str,
    model_dir: str,
    class_dirs: list[str],
    generate: dict,
    generated_set: int,
    output_rate: int,
) -> None:
    """The reconstructions of one generated set, a folder per class: each pair's first clip inverted
    and decoded by the same model and settings as interpolation, with nothing mixed in (alpha 0)."""
    generate = {**generate, "mode": "interpolate"}  # a reconstruction inverts its clip, whatever generate.mode
    _decode_classes(manifest_csv, pairs_csv, model_dir, class_dirs, generate, generated_set, output_rate, mix=False)


def sample(
    *,
    manifest_csv: str,
    pairs_csv: str,
    model_dir: str,
    class_dirs: list[str],
    generate: dict,
    generated_set: int,
    output_rate: int,
) -> None:
    """The sampled clips of one generated set, a folder per class: one per pair, drawn from fresh noise by
    the class-conditional model under the pair's class (generate.mode sample), at the pair's loudness."""
    generate = {**generate, "mode": "sample", "alpha": 0.0}  # nothing is mixed
    _decode_classes(manifest_csv, pairs_csv, model_dir, class_dirs, generate, generated_set, output_rate)


def _decode_classes(
    manifest_csv, pairs_csv, model_dir, class_dirs, generate, generated_set, output_rate, mix=True
) -> None:
    """generate_classes on a set's pairs: each pair's two clips slerped, or (`mix` False) its first
    clip alone, as a pair of that clip with itself at alpha 0."""
    from .diffusion import is_pretrained, load_pipeline
    from .generate import decoding_settings, generate_classes

    pipeline = load_pipeline(model_dir)
    settings = decoding_settings(generate, generated_set, is_pretrained(model_dir), mix)
    pairs, manifest = read_table(pairs_csv), read_manifest(manifest_csv)
    generate_classes(pipeline, model_dir, manifest, pairs, class_dirs, settings, output_rate, mix)


def train_classifiers(
    *,
    classes_txt: str,
    real: str,
    split_json: str,
    generated: list[str],
    arm: str,
    seeds: list[int],
    generated_sets: list[int | None],
    split_name: str,
    classifier: dict,
    specaugment: dict | None,
    features: dict,
    weights: list[str],
    metrics: list[str],
    descriptions: list[str],
) -> None:
    """Train an arm's classifier runs on one split, one per seed in turn, each as it would run alone,
    and write each run's weights, metrics and `descriptions` (model.json: the class names, `features`
    and network settings that label new files with the weights alone). A seed's run adds the features
    `generated[k]` of its generated set k (`generated_sets`, None for arms that add nothing). Every run's
    checkpoint stays until all are written, so that a job stopped part way takes up the finished runs."""
    settings = ClassifierSettings.from_config(classifier)
    classes = read_classes(classes_txt)
    split = load_split(split_json)
    sets = training_parts(select_parts(real, split), split, settings)
    checkpoints = []
    for seed, generated_set, outputs in zip(seeds, generated_sets, zip(weights, metrics, descriptions)):
        added_files = [] if generated_set is None else [generated[generated_set]]
        x, y, added = with_added_sets(*sets["train"][:2], added_files)
        run = fit(
            sets, (x, y), classifier, seed, classes, Path(outputs[0]).with_name("checkpoint.safetensors"), specaugment
        )
        record = classifier_metrics(run, sets, classes, split_name, arm, added, generated_set)
        _write_run(run, record, features, classes, *outputs)
        checkpoints.append(run.checkpoint)
    for checkpoint in checkpoints:
        checkpoint.remove()


def _write_run(run, record: dict, features: dict, classes: list[str], weights: str, metrics: str, description: str):
    """A classifier run's weights, model.json and metrics.json."""
    save_tensors(weights, run.model.state_dict())
    write_json(description, describe_model(run.settings.network, features, classes))
    write_json(metrics, record)
    accuracy, choice, seed = record["test_accuracy"], run.settings.epoch_choice, run.seed
    log.info(
        "%s %s seed %d: test accuracy %.3f at epoch %d (%s)",
        record["split"],
        record["arm"],
        seed,
        accuracy,
        run.chosen,
        choice,
    )


def train_judges(
    *,
    classes_txt: str,
    real: str,
    split_json: str,
    classifier: dict,
    seed: int,
    weights: list[str],
    metrics: list[str],
    held_out: list[str],
) -> None:
    """The two judges of generated clips of a split, one after the other: each a classifier of the
    baseline's settings trained on one of the split's halves of training recordings (its
    `judge_halves`; half k writes the k-th of `weights`, `metrics` and `held_out`), its epoch chosen as
    the baseline's. A judge's held_out table is how it labels the other half's real training clips,
    which it never heard: the share that an unseen real clip of each class reaches. Both checkpoints
    stay until both judges are written, so that a job stopped part way takes up a finished judge."""
    settings = ClassifierSettings.from_config(classifier)
    classes = read_classes(classes_txt)
    split = load_split(split_json)
    checkpoints = []
    for half, outputs in enumerate(zip(weights, metrics, held_out)):
        parts = select_parts(real, judge_split(split, half), ("train", "val", "test", "held_out"))
        sets = training_parts(parts, split, settings)
        run = fit(
            sets, sets["train"][:2], classifier, seed, classes, Path(outputs[0]).with_name("checkpoint.safetensors")
        )
        _write_judge(run, parts, sets, classes, split["split"], half, *outputs)
        checkpoints.append(run.checkpoint)
    for checkpoint in checkpoints:
        checkpoint.remove()


def _write_judge(run, parts, sets, classes, split_name, half, weights: str, metrics: str, held_out_csv: str) -> None:
    """A judge's weights, its held-out table and metrics.json."""
    x, y, ids = parts["held_out"]
    proba = probabilities(run.model, x, run.settings.network.precision, run.settings.device)
    held_out = class_scores(proba, y, ids, classes).assign(judge=half)
    write_table(held_out_csv, held_out)
    save_tensors(weights, run.model.state_dict())
    share = share_as_intended(held_out)
    write_json(metrics, judge_metrics(run, sets, classes, split_name, half, share))
    log.info("judge %s half %d: %.1f %% of %d held-out real clips right", split_name, half, 100 * share, len(ids))


def report(
    *,
    metrics: list[str],
    scores: list[str],
    judges: list[str],
    held_out: list[str],
    novelty: list[str],
    records: list[str],
    rejected_csv: str,
    protocol: dict,
    dataset: str,
    generated_sets: int,
    outputs: dict,
) -> None:
    """The accuracy, per-class, class-fidelity and runtime tables and the accuracy plots.

    `scores` are results/scores/{split}/set{k}/{origin}.csv files (score_generated), `judges` and
    `held_out` the judges' metrics.json and held_out.csv (results/judges/{split}/half{h}/), `novelty`
    the splits' novelty tables (results/novelty/{split}.csv);
    `records` are the trained diffusion models and generated class folders;
    `outputs` maps table, pivot, markdown, per_class, fidelity, runtimes, plot, labelled_plot,
    confusion, classifier_training, where diffusion models are trained diffusion_training, and where
    clips are scored novelty, to their paths.
    """
    from .plots import report_figures
    from .report import (
        diffusion_losses,
        protocol_label,
        report_markdown,
        report_tables,
        stage_records,
    )

    loaded = [read_json(path) for path in metrics]
    skipped = len(pd.read_csv(rejected_csv))
    fidelity, clips = _fidelity_and_novelty(scores, held_out, novelty)
    by_stage = {**stage_records(records), "train_judge": [read_json(path) for path in judges]}
    label = protocol_label(with_defaults("protocol", protocol))
    tables = report_tables(loaded, label, dataset, skipped, fidelity, by_stage)
    for key, table in tables.items():
        write_table(outputs[key], table)
    write_text(outputs["markdown"], report_markdown(tables, generated_sets, skipped))
    losses = diffusion_losses(records) if "diffusion_training" in outputs else None
    novelty = clips if "novelty" in outputs else None
    for key, draw in report_figures(loaded, dataset, losses, novelty).items():
        with atomic_output(outputs[key]) as tmp:
            draw(tmp)


def _fidelity_and_novelty(scores: list[str], held_out: list[str], novelty: list[str]):
    """The fidelity table with its novelty columns, and every clip's distances (report.novelty_clips)."""
    from .report import fidelity_table, novelty_clips, novelty_table, tables_by_split

    clips = novelty_clips({Path(path).stem: read_table(path) for path in novelty})
    fidelity = fidelity_table(tables_by_split(scores), tables_by_split(held_out))
    return fidelity.merge(novelty_table(clips), on=["labelled_per_class", "class"], how="left"), clips


def listen(
    *,
    manifest_csv: str,
    pairs_csv: str,
    class_dirs: list[str],
    reconstructed_dirs: list[str] = (),
    sampled_dirs: list[str] = (),
    mel_average: str | None,
    mel: dict | None = None,
    model_dir: str | None = None,
    features: dict,
    seed: int,
    output: str,
) -> None:
    """A page to hear one generated set (`pairs_csv`: results/pairs/{split}/set{k}.csv): per class, its
    first pairs' real clips, each through the round trip (given the diffusion pipeline's mel image:
    `mel` or `model_dir`, as mel_spec_from takes them), the first clip's reconstruction (given
    `reconstructed_dirs`), the interpolated clip (given `class_dirs`), the mel average (given the
    `mel_average` features) and the class sampled from noise (given `sampled_dirs`)."""
    from .diffusion import mel_spec_from
    from .listen import PairSounds, listening_page, mel_average_sounds, pairs_on_page, real_sounds

    feature_spec = FeatureSpec(**features)
    drawn = read_table(pairs_csv)
    shown = pairs_on_page(drawn).to_dict("records")
    paths = read_manifest(manifest_csv).set_index("id")["path"]
    mel_spec = mel_spec_from(mel, model_dir) if mel or model_dir else None
    wavs = pair_wavs(shown, class_dirs, "interpolate")
    reconstructed = pair_wavs(shown, reconstructed_dirs, "reconstruct")
    sampled = pair_wavs(shown, sampled_dirs, "sample (interpolate in generate.mode sample)")
    generator = torch.Generator().manual_seed(seed)
    real, rebuilt = real_sounds(shown, paths, feature_spec, mel_spec, generator)
    averaged = mel_average_sounds(shown, mel_average, pairs_csv, feature_spec, generator) if mel_average else {}
    sounds = PairSounds(real, rebuilt, reconstructed, wavs, averaged, sampled)
    text = listening_page(generated_set_of_pairs(pairs_csv), drawn, shown, sounds, mel_spec, feature_spec)
    write_text(output, text)
    players, classes = text.count("<audio "), len({pair["class"] for pair in shown})
    log.info("%d clips of %d classes on the page (%.1f MB)", players, classes, len(text.encode()) / 1e6)


def plot_examples(*, manifest_csv: str, split_json: str, class_dirs: list[str], model_dir: str, output: str) -> None:
    """Real and generated mel images per class, side by side, in the generating pipeline's mel settings."""
    from .diffusion import saved_mel_spec
    from .plots import example_images, examples_plot

    spec = saved_mel_spec(model_dir)
    train = clips_in(read_manifest(manifest_csv), load_split(split_json))
    real, generated = example_images(train, class_dirs, spec)
    with atomic_output(output) as tmp:
        examples_plot(real, generated, tmp)
