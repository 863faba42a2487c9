"""The comparison table: accuracy per variant over seeds and folds, paired gains with 95 % intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from . import CLASSES

PUBLISHED = {"baseline": 0.578, "diffusion": 0.628}
"""The seed project's figures: best epoch on its 10 % random split, which also chose that epoch."""


def runs_frame(metrics: list[dict]) -> pd.DataFrame:
    """One row per training run: split, variant, seed and its accuracies."""
    return pd.DataFrame(
        [
            {
                "split": m["split"],
                "labelled_per_class": _labelled(m.get("train_per_class")),
                "variant": m["variant"],
                "seed": m["seed"],
                "test_accuracy": m["test_accuracy"],
                "seed_style_accuracy": m["seed_style"]["best_test_accuracy"],
                "chosen_epoch": m["chosen_epoch"],
            }
            for m in metrics
        ]
    )


def _labelled(n) -> str:
    return "all" if n is None or (isinstance(n, float) and math.isnan(n)) else str(int(n))


def mean_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its t interval (nan when there is a single value)."""
    values = np.asarray(values, float)
    if len(values) < 2:
        return float(values.mean()) if len(values) else math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(half)


def accuracy_table(runs: pd.DataFrame, protocol: str, baseline: str = "baseline") -> pd.DataFrame:
    """A row per (labelled clips per class, variant), then the published reference rows.

    The gain is paired: each run is compared with the baseline run of the same split and seed.
    """
    base = runs[runs["variant"] == baseline].set_index(["split", "seed"])["test_accuracy"]
    rows = []
    for (labelled, variant), group in runs.groupby(["labelled_per_class", "variant"], sort=False):
        acc = group["test_accuracy"].to_numpy()
        paired = (group.set_index(["split", "seed"])["test_accuracy"] - base).dropna().to_numpy()
        gain, half = mean_interval(paired) if variant != baseline and len(paired) else (math.nan, math.nan)
        rows.append(
            {
                "labelled_per_class": labelled,
                "variant": variant,
                "protocol": protocol,
                "runs": len(group),
                "accuracy_mean": acc.mean(),
                "accuracy_std": acc.std(ddof=1) if len(acc) > 1 else math.nan,
                "gain_mean": gain,
                "gain_ci95_low": gain - half,
                "gain_ci95_high": gain + half,
                "seed_style_accuracy_mean": group["seed_style_accuracy"].mean(),
            }
        )
    table = pd.DataFrame(rows)
    variants = [baseline, *sorted(set(runs["variant"]) - {baseline})]
    size = table["labelled_per_class"].map(lambda n: math.inf if n == "all" else int(n))
    table = table.assign(_size=size, _variant=table["variant"].map(variants.index))
    table = table.sort_values(["_size", "_variant"]).drop(columns=["_size", "_variant"]).reset_index(drop=True)
    published = pd.DataFrame(
        [
            {
                "labelled_per_class": "all",
                "variant": f"published {variant}",
                "protocol": "random_split, best epoch on test",
                "runs": 1,
                "accuracy_mean": acc,
                "gain_mean": acc - PUBLISHED["baseline"] if variant != "baseline" else math.nan,
            }
            for variant, acc in PUBLISHED.items()
        ]
    )
    return pd.concat([table, published], ignore_index=True)


def fidelity_table(
    scores: dict[tuple[str, str], pd.DataFrame], baseline_metrics: list[dict], seed: int
) -> pd.DataFrame:
    """Per generating source and class: the share of generated clips that the split's baseline
    classifier labels as their intended class, beside its accuracy on the real test clips.

    `scores` maps (split, source) to score_generated's table, made with the split's baseline run of
    `seed`; the real-clip share comes from that same run's metrics.
    """
    real_shares = {m["split"]: m["per_class_accuracy"] for m in baseline_metrics if m["seed"] == seed}
    rows = []
    for (split, source), frame in scores.items():
        real = real_shares.get(split, {})
        for class_name, group in frame.groupby("class"):
            rows.append(
                {
                    "source": source,
                    "split": split,
                    "class": class_name,
                    "generated": len(group),
                    "generated_share": (group["predicted"] == class_name).mean(),
                    "real_test_share": real.get(class_name),
                }
            )
    if not rows:
        return pd.DataFrame(columns=["source", "class", "generated", "generated_share", "real_test_share"])
    table = pd.DataFrame(rows).astype({"real_test_share": float})
    return (
        table.groupby(["source", "class"], sort=True)
        .agg(
            generated=("generated", "sum"),
            generated_share=("generated_share", "mean"),
            real_test_share=("real_test_share", "mean"),
        )
        .reset_index()
    )


def fidelity_markdown(table: pd.DataFrame) -> str:
    lines = [
        "| source | class | generated clips | labelled as intended % | real test clips labelled right % |",
        "|---|---|---|---|---|",
    ]
    for r in table.to_dict("records"):
        lines.append(
            f"| {r['source']} | {r['class']} | {r['generated']} "
            f"| {_pct(r['generated_share'])} | {_pct(r['real_test_share'])} |"
        )
    note = (
        "\nBoth shares come from the split's baseline classifier (the first configured seed). A generator that makes "
        "class-faithful audio scores near the real clips' share; one that makes noise scores near 10 %. "
        "round_trip is real training clips sent only through the diffusion pipeline's mel image and Griffin-Lim: "
        "the most a generator working in that image can keep.\n"
    )
    return "\n".join(lines) + "\n" + note


def per_class_table(metrics: list[dict]) -> pd.DataFrame:
    """Mean per-class test accuracy of each (labelled clips per class, variant)."""
    rows = [
        {"labelled_per_class": _labelled(m.get("train_per_class")), "variant": m["variant"], **m["per_class_accuracy"]}
        for m in metrics
    ]
    return pd.DataFrame(rows).groupby(["labelled_per_class", "variant"], sort=False)[list(CLASSES)].mean().reset_index()


def _pct(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def markdown_table(table: pd.DataFrame) -> str:
    """The accuracy table for reading: percentages, mean ± std and the gain with its interval."""
    lines = [
        "| labelled per class | variant | protocol | runs | accuracy % (mean ± std) "
        "| gain over baseline, points (95 % CI) | seed-style best-epoch-on-test % |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table.to_dict("records"):
        acc = _pct(r["accuracy_mean"]) + (f" ± {_pct(r['accuracy_std'])}" if _pct(r.get("accuracy_std")) else "")
        gain = _pct(r.get("gain_mean"))
        if gain and _pct(r.get("gain_ci95_low")):
            gain += f" ({_pct(r['gain_ci95_low'])} to {_pct(r['gain_ci95_high'])})"
        lines.append(
            f"| {r['labelled_per_class']} | {r['variant']} | {r['protocol']} | {r['runs']} | {acc} | {gain} "
            f"| {_pct(r.get('seed_style_accuracy_mean'))} |"
        )
    note = (
        "\nAccuracy is on test clips, with the epoch chosen on validation clips from the training side. "
        "The seed-style column picks the best epoch on the test clips themselves, as the published "
        "figures did: it is optimistic and shown only for comparison.\n"
    )
    return "\n".join(lines) + "\n" + note
