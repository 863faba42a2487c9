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
                "variant": m["variant"],
                "seed": m["seed"],
                "test_accuracy": m["test_accuracy"],
                "seed_style_accuracy": m["seed_style"]["best_test_accuracy"],
                "chosen_epoch": m["chosen_epoch"],
            }
            for m in metrics
        ]
    )


def mean_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its t interval (nan when there is a single value)."""
    values = np.asarray(values, float)
    if len(values) < 2:
        return float(values.mean()) if len(values) else math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(half)


def accuracy_table(runs: pd.DataFrame, protocol: str, baseline: str = "baseline") -> pd.DataFrame:
    """A row per variant, then the published reference rows.

    The gain is paired: each run is compared with the baseline run of the same split and seed.
    """
    base = runs[runs["variant"] == baseline].set_index(["split", "seed"])["test_accuracy"]
    rows = []
    for variant, group in runs.groupby("variant", sort=False):
        acc = group["test_accuracy"].to_numpy()
        paired = group.set_index(["split", "seed"])["test_accuracy"] - base
        paired = paired.dropna().to_numpy()
        gain, half = mean_interval(paired) if variant != baseline and len(paired) else (math.nan, math.nan)
        rows.append(
            {
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
    order = {v: i for i, v in enumerate([baseline, *sorted(set(runs["variant"]) - {baseline})])}
    table = pd.DataFrame(rows).sort_values("variant", key=lambda s: s.map(order)).reset_index(drop=True)
    published = pd.DataFrame(
        [
            {
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


def per_class_table(metrics: list[dict]) -> pd.DataFrame:
    """Mean per-class test accuracy of each variant."""
    rows = [{"variant": m["variant"], **m["per_class_accuracy"]} for m in metrics]
    return pd.DataFrame(rows).groupby("variant", sort=False)[list(CLASSES)].mean().reset_index()


def _pct(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def markdown_table(table: pd.DataFrame) -> str:
    """The accuracy table for reading: percentages, mean ± std and the gain with its interval."""
    lines = [
        "| variant | protocol | runs | accuracy % (mean ± std) | gain over baseline, points (95 % CI) | seed-style best-epoch-on-test % |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.to_dict("records"):
        acc = _pct(r["accuracy_mean"]) + (f" ± {_pct(r['accuracy_std'])}" if _pct(r.get("accuracy_std")) else "")
        gain = _pct(r.get("gain_mean"))
        if gain and _pct(r.get("gain_ci95_low")):
            gain += f" ({_pct(r['gain_ci95_low'])} to {_pct(r['gain_ci95_high'])})"
        lines.append(f"| {r['variant']} | {r['protocol']} | {r['runs']} | {acc} | {gain} | {_pct(r.get('seed_style_accuracy_mean'))} |")
    note = (
        "\nAccuracy is on test clips, with the epoch chosen on validation clips from the training side. "
        "The seed-style column picks the best epoch on the test clips themselves, as the published "
        "figures did: it is optimistic and shown only for comparison.\n"
    )
    return "\n".join(lines) + "\n" + note


def accuracy_plot(runs: pd.DataFrame, path) -> None:
    """Each run as a dot, mean ± std as a bar per variant, published figures as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(["baseline", *runs["variant"]]))
    variants = [v for v in variants if v in set(runs["variant"])]
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(variants), 4))
    for i, variant in enumerate(variants):
        acc = 100 * runs.loc[runs["variant"] == variant, "test_accuracy"].to_numpy()
        ax.bar(i, acc.mean(), yerr=acc.std(ddof=1) if len(acc) > 1 else 0, color="#9ecae1", capsize=6)
        ax.scatter(np.full(len(acc), i) + np.linspace(-0.15, 0.15, len(acc)), acc, color="#08519c", zorder=3, s=14)
    for name, value in PUBLISHED.items():
        ax.axhline(100 * value, ls="--", lw=1, color="grey")
        ax.text(len(variants) - 0.5, 100 * value, f"published {name}", va="bottom", ha="right", fontsize=8, color="grey")
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Accuracy per variant (dots: runs; bars: mean ± std)")
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
