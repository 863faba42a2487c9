"""The report's tables, read from the runs' records: accuracy per arm over seeds and folds, paired
gains with 95 % intervals taken over the independent units of each row, class fidelity, runtimes."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .dataset import read_table
from .files import read_json
from .splits import parse_split_name

PUBLISHED = {"baseline": 0.578, "diffusion": 0.628}
"""The published study's UrbanSound8K figures: best epoch on its 10 % random split, which also chose that epoch."""
PUBLISHED_PROTOCOL = "one random 90:10 split by clip, best epoch chosen on the test clips"


def protocol_label(protocol: dict) -> str:
    """The table's protocol column: kfold, or a random split by clip (whose test recordings also
    train) or by recording."""
    if protocol["kind"] == "kfold":
        return "kfold"
    if protocol.get("group_by_recording"):
        return "random_split by recording"
    return "random_split by clip (test recordings also train)"


def shows_published(dataset: str) -> bool:
    """The published figures are UrbanSound8K's: beside any other dataset they compare nothing."""
    return dataset == "urbansound8k"


def runs_frame(metrics: list[dict]) -> pd.DataFrame:
    """One row per training run: split, arm, seed and its accuracies."""
    return pd.DataFrame(
        [
            {
                "split": m["split"],
                "labelled_per_class": labelled_setting(m.get("train_per_class")),
                "arm": m["arm"],
                "seed": m["seed"],
                "generated_set": m.get("generated_set"),
                "real_clips": m["train_clips"]["real"],
                "added_clips": m["train_clips"]["generated"],
                "test_clips": sum(map(sum, m["confusion_matrix"])),
                "test_accuracy": m["test_accuracy"],
                "best_epoch_on_test_accuracy": m["published_protocol"]["best_test_accuracy"],
                "chosen_epoch": m["chosen_epoch"],
            }
            for m in metrics
        ]
    )


def setting_order(labelled: str) -> float:
    """Sort key of a setting of labelled clips: by N, "all" last."""
    return math.inf if labelled == "all" else int(labelled)


def labelled_setting(n) -> str:
    """ "all" or the number of labelled clips per class of a low-data setting."""
    return "all" if n is None or (isinstance(n, float) and math.isnan(n)) else str(int(n))


def mean_interval(values: np.ndarray, level: float = 0.95, test_train_ratio: float = 0.0) -> tuple[float, float]:
    """Mean and the half-width of its t interval (nan when there is a single value).

    With `test_train_ratio` (test clips per training clip of each unit), the corrected resampled t
    interval of Nadeau and Bengio (2003): the variance is scaled by 1/J + n_test/n_train instead of
    1/J, because units that share training clips (the folds of one dataset) vary less than
    independent samples would."""
    values = np.asarray(values, float)
    if len(values) < 2:
        return float(values.mean()) if len(values) else math.nan, math.nan
    scale = math.sqrt(values.var(ddof=1) * (1 / len(values) + test_train_ratio))
    return float(values.mean()), float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * scale)


def _labelled_setting(split: str) -> str:
    return labelled_setting(parse_split_name(split)[1])


def gain_interval(paired: pd.DataFrame, generates: bool) -> tuple[float, float, str]:
    """(mean, half-width of the 95 % interval, what it covers) of a row's paired gains (columns split,
    seed, generated_set, gain, test_clips, real_clips). Runs that share test clips, a diffusion model
    and generated clips are not independent: with several splits, seeds are averaged within each
    split and the interval over splits is corrected for the training clips they share (Nadeau and
    Bengio); with one split and several generated sets, seeds are averaged within each set; only
    otherwise is each seed a unit."""
    splits = paired["split"].nunique()
    if splits > 1:
        ratio = paired["test_clips"].mean() / paired["real_clips"].mean()
        mean, half = mean_interval(paired.groupby("split")["gain"].mean().to_numpy(), test_train_ratio=ratio)
        return mean, half, f"{splits} folds, corrected for shared training clips (seeds averaged within each)"
    sets = paired["generated_set"].nunique() if generates else 0
    if sets > 1:
        mean, half = mean_interval(paired.groupby("generated_set")["gain"].mean().to_numpy())
        covers = "pair and noise sampling and classifier noise, not diffusion training"
        return mean, half, f"{sets} generated sets (seeds averaged within each): {covers}"
    seeds = f"{len(paired)} seeds: classifier noise only"
    return *mean_interval(paired["gain"].to_numpy()), seeds + ("; one generated set" if generates else "")


def accuracy_table(runs: pd.DataFrame, protocol: str, dataset: str, baseline: str = "baseline") -> pd.DataFrame:
    """A row per (labelled clips per class, arm), then, for UrbanSound8K, the published rows, whose
    figures are best-epoch-on-test ones and stand only in that column. `protocol` labels the rows
    (`protocol_label`).

    The gain is paired: each run is compared with the baseline run of the same split and seed; its
    interval is taken over the row's independent units (`gain_interval`), named in `interval_over`.
    """
    base = runs[runs["arm"] == baseline].set_index(["split", "seed"])["test_accuracy"]
    rows = [
        _accuracy_row(group, labelled, arm, protocol, base if arm != baseline else None)
        for (labelled, arm), group in runs.groupby(["labelled_per_class", "arm"], sort=False)
    ]
    table = pd.DataFrame(rows)
    arms = [baseline, *(arm for arm in dict.fromkeys(runs["arm"]) if arm != baseline)]  # as the config lists them
    size = table["labelled_per_class"].map(setting_order)
    table = table.assign(_size=size, _arm=table["arm"].map(arms.index))
    table = table.sort_values(["_size", "_arm"]).drop(columns=["_size", "_arm"]).reset_index(drop=True)
    if not shows_published(dataset):
        return table
    return pd.concat([table, published_rows()], ignore_index=True)


def _accuracy_row(group: pd.DataFrame, labelled: str, arm: str, protocol: str, base: pd.Series | None) -> dict:
    """The accuracy table's row of one arm's runs (`group`) in one setting of labelled clips, with its
    gain over the baseline accuracies `base` (by split and seed; None for the baseline itself)."""
    acc = group["test_accuracy"].to_numpy()
    gain, half, over = math.nan, math.nan, ""
    if base is not None:
        paired = group.set_index(["split", "seed"])
        paired = paired.assign(gain=paired["test_accuracy"] - base).dropna(subset=["gain"]).reset_index()
        if len(paired):
            gain, half, over = gain_interval(paired, group["added_clips"].gt(0).any())
    return {
        "labelled_per_class": labelled,
        "arm": arm,
        "protocol": protocol,
        "runs": len(group),
        "real_clips": group["real_clips"].mean(),
        "added_clips": group["added_clips"].mean(),
        "accuracy_mean": acc.mean(),
        "accuracy_std": acc.std(ddof=1) if len(acc) > 1 else math.nan,
        "gain_mean": gain,
        "gain_ci95_low": gain - half,
        "gain_ci95_high": gain + half,
        "interval_over": over,
        "best_epoch_on_test_accuracy_mean": group["best_epoch_on_test_accuracy"].mean(),
    }


def published_rows() -> pd.DataFrame:
    """The published study's rows of the accuracy table: its figures in the best-epoch-on-test column only."""
    return pd.DataFrame(
        [
            {
                "labelled_per_class": "all",
                "arm": f"published {arm}",
                "protocol": PUBLISHED_PROTOCOL,
                "runs": 1,
                "interval_over": "",
                "best_epoch_on_test_accuracy_mean": acc,
            }
            for arm, acc in PUBLISHED.items()
        ]
    )


def gain_pivot(table: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    """The accuracy table compacted: a row per setting of labelled clips, the baseline's real
    training clips (below N per class where a short class kept all it had) and mean accuracy, then per arm
    its mean paired gain and the ends of its 95 % interval."""
    own = table[~table["arm"].str.startswith("published")]
    arms = [arm for arm in dict.fromkeys(own["arm"]) if arm != baseline]  # the accuracy table's order
    rows = []
    for labelled, group in own.groupby("labelled_per_class", sort=False):
        by_arm = group.set_index("arm")
        row = {
            "labelled_per_class": labelled,
            "real_clips": by_arm["real_clips"].get(baseline, math.nan),
            f"{baseline}_accuracy": by_arm["accuracy_mean"].get(baseline, math.nan),
        }
        for arm in arms:
            for column, name in (("gain_mean", "gain"), ("gain_ci95_low", "ci95_low"), ("gain_ci95_high", "ci95_high")):
                row[f"{arm}_{name}"] = by_arm[column].get(arm, math.nan)
        rows.append(row)
    pivot = pd.DataFrame(rows)
    return pivot.assign(_size=pivot["labelled_per_class"].map(setting_order)).sort_values("_size").drop(columns="_size")


def pivot_markdown(pivot: pd.DataFrame, baseline: str = "baseline") -> str:
    """The pivot for reading: rows N, a column per arm, cells the gain in points and its interval."""
    arms = [c.removesuffix("_gain") for c in pivot.columns if c.endswith("_gain")]
    lines = [
        f"| labelled per class | real training clips | {baseline} accuracy % |" + "".join(f" {arm} |" for arm in arms),
        "|---|---|---|" + "---|" * len(arms),
    ]
    for r in pivot.to_dict("records"):
        cells = []
        for arm in arms:
            gain, low = _pct(r[f"{arm}_gain"]), _pct(r[f"{arm}_ci95_low"])
            cells.append(f"{gain} ({low} to {_pct(r[f'{arm}_ci95_high'])})" if gain and low else gain)
        real = "" if pd.isna(r["real_clips"]) else f"{r['real_clips']:.0f}"
        lines.append(
            f"| {r['labelled_per_class']} | {real} | {_pct(r[f'{baseline}_accuracy'])} |"
            + "".join(f" {cell} |" for cell in cells)
        )
    note = (
        "\nEach cell is an arm's mean paired gain over the baseline, in points, with its 95 % interval "
        "(over the units named in the full table below).\n"
    )
    return "\n".join(lines) + "\n" + note


ORIGIN_NAMES = {"held_out": "held-out real", "round_trip": "round trip", "mel_average": "mel average"}
"""How the report's tables head an origin whose name is not a word of its own."""

FIDELITY_ORIGINS = ("held_out", "sources", "round_trip", "reconstruction", "diffusion", "sample", "mel_average")
"""The fidelity table's columns, from real clips no judge heard to each rung of the ladder."""


def fidelity_table(scores: dict[str, pd.DataFrame], held_out: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per setting of labelled clips and class, side by side per origin of the clips: the share of clips that a
    judge which never heard them labels as their intended class, and how many clips that is.

    `scores` maps a split to its score_generated tables (every generated set, concatenated: columns
    origin, class, predicted); `held_out` maps it to both judges' tables of the other half's real
    training clips (origin held_out). A setting's share is the mean over its splits, each of which
    has its own judges."""
    frames = [frame.assign(split=split) for split, frame in scores.items()]
    frames += [frame.assign(split=split, origin="held_out") for split, frame in held_out.items()]
    columns = ["labelled_per_class", "class"]
    if not frames:
        return pd.DataFrame(columns=columns)
    every = pd.concat(frames, ignore_index=True)
    every = every.assign(
        right=every["class"] == every["predicted"], labelled_per_class=every["split"].map(_labelled_setting)
    )
    keys = ["labelled_per_class", "origin", "class"]
    per_split = every.groupby([*keys, "split"])["right"].agg(["mean", "size"]).reset_index()
    table = per_split.groupby(keys).agg(share=("mean", "mean"), clips=("size", "sum"))
    origins = [origin for origin in FIDELITY_ORIGINS if origin in set(every["origin"])]
    shares = table["share"].unstack("origin")[origins]
    clips = table["clips"].unstack("origin")[origins].add_suffix("_clips")
    wide = shares.join(clips).reset_index()
    wide = wide.assign(_size=wide["labelled_per_class"].map(setting_order)).sort_values(["_size", "class"])
    return wide.drop(columns="_size").reset_index(drop=True)


FIDELITY_NOTE = (
    "\nEach share is of clips labelled as their intended class by a judge that never heard them: each split's "
    "training recordings are cut in two halves, a judge with the baseline's settings (the first seed) trains on "
    "each, and every pair is drawn within one half and judged by the other half's judge. held-out real: each "
    "half's real training clips, judged by the other half's judge (what an unseen real clip of the class "
    "reaches); sources: each pair's first clip as it is; round trip: that clip through the diffusion pipeline's "
    "mel image and Griffin-Lim only; reconstruction: that clip also inverted and decoded by the diffusion model; "
    "diffusion: the pair's interpolation (in generate.mode sample, a clip of its class drawn from noise); "
    "sample: a clip of the class drawn from noise by a class-conditional model; "
    "mel average: the pair's mel spectrograms averaged in power (no image, no model). A generator that copied its "
    "sources would score as the sources do, never above held-out real clips; one that makes noise scores near one "
    "in the number of classes.\n"
)


def fidelity_markdown(table: pd.DataFrame) -> str:
    """The fidelity table for reading: a row per setting and class and one with the mean over classes,
    a column per origin in the ladder's order."""
    origins = [origin for origin in FIDELITY_ORIGINS if origin in table.columns]
    headers = [f"{ORIGIN_NAMES.get(origin, origin)} %" for origin in origins]
    lines = _class_rows(table, headers, lambda row: [_pct(row[origin]) for origin in origins])
    return "\n".join(lines) + "\n" + FIDELITY_NOTE


def _class_rows(table: pd.DataFrame, headers: list[str], cells: Callable[[dict], list[str]]) -> list[str]:
    """The lines of a markdown table with a row per setting of labelled clips and class, then one per
    setting with the mean over its classes: `headers` name the columns after those two, `cells(row)`
    fills them."""
    lines = ["| labelled per class | class | " + " | ".join(headers) + " |", "|---|---|" + "---|" * len(headers)]
    for labelled, group in table.groupby("labelled_per_class", sort=False):
        means = group.drop(columns=["labelled_per_class", "class"]).mean(numeric_only=True)
        for row in [*group.to_dict("records"), {"class": "**mean over classes**", **means}]:
            lines.append(f"| {labelled} | {row['class']} | " + " | ".join(cells(row)) + " |")
    return lines


NOVELTY_ORIGINS = ("validation", "sources", "round_trip", "reconstruction", "diffusion", "sample", "mel_average")
"""The novelty table's origins: real clips that neither the diffusion model nor the judges trained on (the splits'
validation clips), the pairs' first clips (training clips, measured against the other training clips), then each
rung of the ladder."""

DISTANCES = {"feature_distance": "features", "judge_distance": "judge"}
"""The distance columns of the novelty tables (results/novelty/{split}.csv), and their short names."""


def novelty_clips(novelty: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every clip's distances to the nearest real training clip of its split (`novelty`: each split's
    novelty table, results/novelty/{split}.csv), with its split and labelled_per_class."""
    columns = ["labelled_per_class", "split", "origin", "class", *DISTANCES]
    if not novelty:
        return pd.DataFrame(columns=columns)
    every = pd.concat([frame.assign(split=split) for split, frame in novelty.items()], ignore_index=True)
    return every.assign(labelled_per_class=every["split"].map(_labelled_setting))[columns]


def novelty_table(clips: pd.DataFrame) -> pd.DataFrame:
    """Per setting of labelled clips and class, per origin: the median distance of its clips (novelty_clips)
    to the nearest real training clip, in features and in the judge's layer (`<origin>_<distance>`
    columns), the mean over the setting's splits."""
    keys = ["labelled_per_class", "class"]
    if not len(clips):
        return pd.DataFrame(columns=keys)
    per_split = clips.groupby([*keys, "origin", "split"])[list(DISTANCES)].median()
    wide = per_split.groupby([*keys, "origin"]).mean().unstack("origin")
    origins = [origin for origin in NOVELTY_ORIGINS if origin in set(clips["origin"])]
    wide = wide.reindex(columns=[(distance, origin) for origin in origins for distance in DISTANCES])
    wide.columns = [f"{origin}_{distance}" for distance, origin in wide.columns]
    return wide.reset_index()


NOVELTY_NOTE = (
    "\nEach cell is the median distance of a class's clips to the nearest real training clip of their split, in the "
    "classifier's input features (Euclidean, over the mel bins in dB) / in the penultimate layer of the judge that "
    "scored them; the mean over a setting's splits. validation: the split's validation clips, whole recordings that "
    "neither the diffusion model nor the judges trained on (what an unseen real clip of the class reaches); "
    "sources: each pair's first clip, a training clip, measured against the other training clips. A generator that "
    "copies its training clips shows distances well below the validation clips'.\n"
)


def novelty_markdown(table: pd.DataFrame) -> str:
    """The novelty columns for reading: a row per setting and class and one with the mean over classes,
    a "features / judge" cell per origin."""
    origins = [origin for origin in NOVELTY_ORIGINS if f"{origin}_feature_distance" in table.columns]

    def cells(row: dict) -> list[str]:
        return [f"{_number(row[f'{o}_feature_distance'])} / {_number(row[f'{o}_judge_distance'], 2)}" for o in origins]

    lines = _class_rows(table, [ORIGIN_NAMES.get(origin, origin) for origin in origins], cells)
    return "\n".join(lines) + "\n" + NOVELTY_NOTE


def _number(value, digits: int = 0) -> str:
    return "" if pd.isna(value) else f"{value:.{digits}f}"


def per_class_table(metrics: list[dict]) -> pd.DataFrame:
    """Mean per-class test accuracy of each (labelled clips per class, arm), classes in label order."""
    rows = [
        {
            "labelled_per_class": labelled_setting(m.get("train_per_class")),
            "arm": m["arm"],
            **m["per_class_accuracy"],
        }
        for m in metrics
    ]
    per_run = pd.DataFrame(rows).groupby(["labelled_per_class", "arm"], sort=False)
    return per_run[metrics[0]["classes"]].mean().reset_index()


def _pct(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def markdown_table(table: pd.DataFrame) -> str:
    """The accuracy table for reading: percentages, mean ± std, clips added and the gain with its
    interval and what that interval covers."""
    lines = [
        "| labelled per class | arm | protocol | runs | added clips | accuracy % (mean ± std) "
        "| gain over baseline, points (95 % CI) | interval over | best epoch on test (optimistic) % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.to_dict("records"):
        acc = _pct(r.get("accuracy_mean")) + (f" ± {_pct(r['accuracy_std'])}" if _pct(r.get("accuracy_std")) else "")
        gain = _pct(r.get("gain_mean"))
        if gain and _pct(r.get("gain_ci95_low")):
            gain += f" ({_pct(r['gain_ci95_low'])} to {_pct(r['gain_ci95_high'])})"
        added = "" if pd.isna(r.get("added_clips")) else f"{r['added_clips']:.0f}"
        lines.append(
            f"| {r['labelled_per_class']} | {r['arm']} | {r['protocol']} | {r['runs']} | {added} | {acc} | {gain} "
            f"| {r.get('interval_over') or ''} | {_pct(r.get('best_epoch_on_test_accuracy_mean'))} |"
        )
    note = (
        "\nAccuracy is on test clips, with the epoch chosen on validation clips from the training side. "
        "Each gain is paired (a run against the baseline run of its split and seed); its interval is a t "
        "interval over the row's independent units, named in the interval column: folds when there are "
        "several (their seeds averaged; the interval is widened by the correction of Nadeau and Bengio, since "
        "the training sides of folds share most of their clips), else generated sets (generate.sets: "
        "they share one diffusion model, so the interval covers pair and noise sampling, not diffusion "
        "training), else seeds, which covers the classifier's noise only. An interval that spans zero shows no "
        "detectable gain. Added clips are the generated or averaged clips each run trains on beside the real "
        "ones (mel_average averages each pair's mel spectrograms in power, dB taken after where the features "
        "are in dB: an arithmetic mean of the two sounds' power, not of their dB). The best-epoch-on-test "
        "column picks the epoch on the test clips themselves, as the published figures did (their rows have no "
        "other figure): it is optimistic and shown only for comparison.\n"
    )
    return "\n".join(lines) + "\n" + note


def runtime_table(metrics: list[dict], records: dict[str, list[dict]]) -> pd.DataFrame:
    """Where each stage computed and in which precision, with how many outputs it made there: classifier
    runs from their metrics, diffusion models and generated class folders from their `records` (by
    stage name)."""
    stages = {**records, "train_classifier": metrics}
    rows = [
        {"stage": stage, "runtime": runtime, "made": made}
        for stage, found in stages.items()
        for runtime, made in sorted(Counter(r.get("runtime", "not recorded") for r in found).items())
    ]
    return pd.DataFrame(rows, columns=["stage", "runtime", "made"])


def runtime_markdown(table: pd.DataFrame) -> str:
    lines = ["| stage | device and precision | made |", "|---|---|---|"]
    lines += [f"| {r.stage} | {r.runtime} | {r.made} |" for r in table.itertuples()]
    return "\n".join(lines) + "\n"


def report_tables(
    metrics: list[dict], protocol: str, dataset: str, skipped: int, fidelity: pd.DataFrame, records: dict
) -> dict[str, pd.DataFrame]:
    """The report's tables by output name: the accuracy table (`table`; `protocol` labels its rows and
    `skipped` counts the unusable clips left out), its pivot, the per-class table, the `fidelity`
    table and the runtimes of the classifier runs' `metrics` and the other stages' `records`."""
    table = accuracy_table(runs_frame(metrics), protocol, dataset)
    table.loc[~table["arm"].str.startswith("published"), "skipped_clips"] = skipped
    return {
        "table": table,
        "pivot": gain_pivot(table),
        "per_class": per_class_table(metrics),
        "fidelity": fidelity,
        "runtimes": runtime_table(metrics, records),
    }


def report_markdown(tables: dict[str, pd.DataFrame], generated_sets: int, skipped: int) -> str:
    """accuracy.md: report_tables for reading, with what the generated sets and the `skipped` clips
    mean; the fidelity section only where generated clips were judged."""
    text = "# Gain per arm and labelled clips\n\n" + pivot_markdown(tables["pivot"])
    text += "\n# Accuracy per arm\n\n" + markdown_table(tables["table"])
    if generated_sets > 1:
        text += (
            f"\nEach split has {generated_sets} generated sets; the k-th classifier seed (counting from 0) "
            f"trains on set k mod {generated_sets}.\n"
        )
    if skipped:
        text += f"\n{skipped} unusable clip(s) were skipped: see results/data/rejected.csv.\n"
    if len(tables["fidelity"]):
        text += "\n# Do generated clips keep their class?\n\n" + fidelity_markdown(tables["fidelity"])
    if any(column.endswith("_feature_distance") for column in tables["fidelity"].columns):
        text += "\n# Are generated clips new?\n\n" + novelty_markdown(tables["fidelity"])
    return text + "\n# Where each stage ran\n\n" + runtime_markdown(tables["runtimes"])


def tables_by_split(paths: list[str]) -> dict[str, pd.DataFrame]:
    """Tables under results/<stage>/{split}/<set or half>/<name>.csv, concatenated per split."""
    frames: dict[str, list[pd.DataFrame]] = {}
    for path in map(Path, paths):
        frames.setdefault(path.parent.parent.name, []).append(read_table(path))
    return {split: pd.concat(found, ignore_index=True) for split, found in frames.items()}


def stage_records(records: list[str]) -> dict[str, list[dict]]:
    """By stage, training.json of each trained diffusion model and generation.json of each generated,
    reconstructed or sampled class (results/{generated,reconstructed,sampled}/...) among the `records` folders."""
    found = {"train_diffusion": [], "interpolate": [], "reconstruct": [], "sample": []}
    for folder in map(Path, records):
        if (folder / "training.json").is_file():
            found["train_diffusion"].append(read_json(folder / "training.json"))
        if (folder / "generation.json").is_file():
            found[STAGE_OF[folder.parts[-4]]].append(read_json(folder / "generation.json"))
    return {stage: made for stage, made in found.items() if made or stage in ("train_diffusion", "interpolate")}


STAGE_OF = {"generated": "interpolate", "reconstructed": "reconstruct", "sampled": "sample"}
"""The generating stage of each folder of class folders (results/<folder>/{split}/set{k}/{class})."""


def diffusion_losses(records: list[str]) -> dict[str, list[float]]:
    """The per-step training loss of each trained diffusion model (results/diffusion/{split}/model), by split."""
    losses = {}
    for folder in map(Path, records):
        record = folder / "training.json"
        if record.is_file():
            loss = read_json(record).get("loss")
            if not loss:
                raise ValueError(f"{record}: no per-step training loss recorded; rerun train_diffusion")
            losses[folder.parent.name] = loss
    return losses
