import math

import pandas as pd
import pytest

from diffaug.report import accuracy_table, fidelity_table, markdown_table, mean_interval, runs_frame


def _runs():
    rows = []
    for split in ("fold1", "fold2"):
        for seed, base in ((0, 0.50), (1, 0.60)):
            rows.append(
                {
                    "split": split,
                    "labelled_per_class": "all",
                    "variant": "baseline",
                    "seed": seed,
                    "test_accuracy": base,
                    "seed_style_accuracy": base + 0.05,
                    "chosen_epoch": 3,
                }
            )
            rows.append(
                {
                    "split": split,
                    "labelled_per_class": "all",
                    "variant": "diffusion",
                    "seed": seed,
                    "test_accuracy": base + (0.10 if seed == 0 else 0.02),
                    "seed_style_accuracy": base + 0.12,
                    "chosen_epoch": 4,
                }
            )
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
    assert "| all | baseline | kfold | 4 | 55.0 ± 5.8 |" in text
    assert "| all | diffusion | kfold | 4 | 61.0 ± 1.2 | 6.0 (" in text
    assert "| published diffusion |" in text and "57.8" in text


def test_low_data_settings_sit_side_by_side_and_pair_within_their_split():
    low = _runs().assign(labelled_per_class="50", split=lambda t: t["split"] + "-n50")
    low["test_accuracy"] -= 0.2
    table = accuracy_table(pd.concat([_runs(), low]), "kfold")
    assert list(zip(table["labelled_per_class"], table["variant"]))[:4] == [
        ("50", "baseline"),
        ("50", "diffusion"),
        ("all", "baseline"),
        ("all", "diffusion"),
    ]
    assert table.loc[0, "accuracy_mean"] == pytest.approx(0.35)
    assert table.loc[1, "gain_mean"] == pytest.approx(0.06)


def test_runs_frame_reads_the_low_data_setting():
    metrics = {
        "split": "fold1-n50",
        "variant": "baseline",
        "seed": 0,
        "test_accuracy": 0.5,
        "chosen_epoch": 2,
        "seed_style": {"best_test_accuracy": 0.6},
    }
    frame = runs_frame([{**metrics, "train_per_class": 50}, {**metrics, "split": "fold1", "train_per_class": None}])
    assert list(frame["labelled_per_class"]) == ["50", "all"]


def test_fidelity_compares_generated_with_real_test_clips():
    scores = pd.DataFrame(
        {
            "class": ["siren"] * 4 + ["dog_bark"] * 2,
            "predicted": ["siren", "siren", "siren", "drilling", "gun_shot", "dog_bark"],
        }
    )
    baseline = [
        {"split": "fold1", "seed": 1, "per_class_accuracy": {"siren": 0.1, "dog_bark": 0.1}},
        {"split": "fold1", "seed": 3, "per_class_accuracy": {"siren": 0.9, "dog_bark": 0.4}},
    ]
    # seeds: [3, 1] in the config: the scores came from seed 3's baseline, so its shares stand beside them
    table = fidelity_table({("fold1", "diffusion"): scores}, baseline, seed=3).set_index("class")
    assert table.loc["siren", "generated_share"] == 0.75 and table.loc["siren", "real_test_share"] == 0.9
    assert table.loc["dog_bark", "generated_share"] == 0.5 and table.loc["dog_bark", "generated"] == 2


def test_figures_are_written_as_png(tmp_path):
    import torch
    from PIL import Image

    from diffaug import CLASSES
    from diffaug.plots import accuracy_plot, confusion_plot, examples_plot

    accuracy_plot(_runs(), tmp_path / "accuracy.png")
    metrics = [{"variant": v, "confusion_matrix": torch.eye(10, dtype=torch.long).tolist()} for v in ("a", "b")]
    confusion_plot(metrics, tmp_path / "confusion.png")
    images = {c: torch.rand(1, 16, 16) for c in CLASSES}
    examples_plot(images, dict(list(images.items())[:3]), tmp_path / "examples.png")
    sizes = {name: Image.open(tmp_path / f"{name}.png").size for name in ("accuracy", "confusion", "examples")}
    assert sizes["confusion"][0] > sizes["confusion"][1]  # one panel per variant, side by side
    assert all(w > 300 and h > 300 for w, h in sizes.values())
