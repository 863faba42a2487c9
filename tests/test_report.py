import math

import pandas as pd
import pytest

from diffaug.report import accuracy_table, markdown_table, mean_interval


def _runs():
    rows = []
    for split in ("fold1", "fold2"):
        for seed, base in ((0, 0.50), (1, 0.60)):
            rows.append({"split": split, "variant": "baseline", "seed": seed, "test_accuracy": base,
                         "seed_style_accuracy": base + 0.05, "chosen_epoch": 3})
            rows.append({"split": split, "variant": "diffusion", "seed": seed,
                         "test_accuracy": base + (0.10 if seed == 0 else 0.02),
                         "seed_style_accuracy": base + 0.12, "chosen_epoch": 4})
    return pd.DataFrame(rows)


def test_mean_interval_uses_student_t():
    mean, half = mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    assert math.isnan(mean_interval([1.0])[1])


def test_table_rows_and_paired_gain():
    table = accuracy_table(_runs(), "kfold").set_index("variant")
    assert list(table.index) == ["baseline", "diffusion", "published baseline", "published diffusion"]
    assert table.loc["baseline", "accuracy_mean"] == pytest.approx(0.55)
    assert table.loc["baseline", "accuracy_std"] == pytest.approx(pd.Series([0.5, 0.6, 0.5, 0.6]).std())
    assert table.loc["baseline", "runs"] == 4
    assert table.loc["diffusion", "gain_mean"] == pytest.approx(0.06)  # paired by split and seed
    half = mean_interval([0.10, 0.02, 0.10, 0.02])[1]
    assert table.loc["diffusion", "gain_ci95_low"] == pytest.approx(0.06 - half)
    assert math.isnan(table.loc["baseline", "gain_mean"])
    assert table.loc["published baseline", "accuracy_mean"] == 0.578
    assert table.loc["published diffusion", "gain_mean"] == pytest.approx(0.05)


def test_markdown_shows_percentages():
    text = markdown_table(accuracy_table(_runs(), "kfold"))
    assert "| baseline | kfold | 4 | 55.0 ± 5.8 |" in text
    assert "| diffusion | kfold | 4 | 61.0 ± 1.2 | 6.0 (" in text
    assert "| published diffusion |" in text and "57.8" in text
