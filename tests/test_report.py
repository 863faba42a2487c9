import json
import math

import pandas as pd
import pytest
import torch
from scipy import stats

from diffaug.report import (
    accuracy_table,
    diffusion_losses,
    fidelity_markdown,
    fidelity_table,
    gain_pivot,
    markdown_table,
    mean_interval,
    novelty_clips,
    novelty_markdown,
    novelty_table,
    pivot_markdown,
    protocol_label,
    report_markdown,
    report_tables,
    runs_frame,
    runtime_table,
    stage_records,
    tables_by_split,
)


def _runs():
    rows = []
    for split in ("fold1", "fold2"):
        for seed, base in ((0, 0.50), (1, 0.60)):
            rows.append(
                {
                    "split": split,
                    "labelled_per_class": "all",
                    "arm": "baseline",
                    "seed": seed,
                    "generated_set": None,
                    "real_clips": 900,
                    "added_clips": 0,
                    "test_accuracy": base,
                    "test_clips": 100,
                    "best_epoch_on_test_accuracy": base + 0.05,
                    "chosen_epoch": 3,
                }
            )
            rows.append(
                {
                    "split": split,
                    "labelled_per_class": "all",
                    "arm": "diffusion",
                    "seed": seed,
                    "generated_set": 0,
                    "real_clips": 900,
                    "added_clips": 20,
                    "test_accuracy": base + (0.10 if seed == 0 else 0.02 if split == "fold1" else 0.04),
                    "test_clips": 100,
                    "best_epoch_on_test_accuracy": base + 0.12,
                    "chosen_epoch": 4,
                }
            )
    return pd.DataFrame(rows)


def test_mean_interval_uses_student_t():
    mean, half = mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    assert math.isnan(mean_interval([1.0])[1])


def test_table_rows_and_paired_gain_with_an_interval_over_folds():
    table = accuracy_table(_runs(), "kfold", "urbansound8k").set_index("arm")
    assert list(table.index) == ["baseline", "diffusion", "published baseline", "published diffusion"]
    assert table.loc["baseline", "accuracy_mean"] == pytest.approx(0.55)
    assert table.loc["baseline", "accuracy_std"] == pytest.approx(pd.Series([0.5, 0.6, 0.5, 0.6]).std())
    assert table.loc["baseline", "runs"] == 4 and table.loc["diffusion", "added_clips"] == 20
    assert table.loc["diffusion", "gain_mean"] == pytest.approx(0.065)  # paired by split and seed
    # the two seeds of a fold share its test clips and generated clips: one unit per fold, not per run,
    # and the folds share training clips: the variance grows by n_test/n_train (Nadeau and Bengio)
    half = stats.t.ppf(0.975, 1) * math.sqrt(pd.Series([0.06, 0.07]).var() * (1 / 2 + 100 / 900))
    assert table.loc["diffusion", "gain_ci95_low"] == pytest.approx(0.065 - half)
    assert half > mean_interval([0.06, 0.07])[1]
    assert table.loc["diffusion", "interval_over"].startswith("2 folds, corrected for shared training clips")
    assert math.isnan(table.loc["baseline", "gain_mean"])


def test_published_figures_stand_only_in_the_best_epoch_on_test_column():
    table = accuracy_table(_runs(), "kfold", "urbansound8k").set_index("arm")
    assert table.loc["published baseline", "best_epoch_on_test_accuracy_mean"] == 0.578
    assert table.loc["published diffusion", "best_epoch_on_test_accuracy_mean"] == 0.628
    published = table.loc[["published baseline", "published diffusion"]]
    assert published[["accuracy_mean", "gain_mean", "gain_ci95_low"]].isna().all().all()
    assert table.loc["published baseline", "protocol"] == (
        "one random 90:10 split by clip, best epoch chosen on the test clips"
    )
    text = markdown_table(table.reset_index())
    assert "best epoch on test (optimistic) %" in text
    protocol = "one random 90:10 split by clip, best epoch chosen on the test clips"
    assert f"| published diffusion | {protocol} | 1 |  |  |  |  | 62.8 |" in text


def test_the_protocol_column_says_when_test_recordings_also_train():
    assert protocol_label({"kind": "kfold"}) == "kfold"
    assert protocol_label({"kind": "random_split", "group_by_recording": False}) == (
        "random_split by clip (test recordings also train)"
    )
    assert protocol_label({"kind": "random_split", "group_by_recording": True}) == "random_split by recording"


def test_one_fold_takes_the_interval_over_generated_sets_or_else_seeds():
    runs = _runs()
    runs = runs[runs["split"] == "fold1"]
    table = accuracy_table(runs, "kfold", "synthetic").set_index("arm")
    assert table.loc["diffusion", "interval_over"] == "2 seeds: classifier noise only; one generated set"
    assert table.loc["diffusion", "gain_ci95_high"] - table.loc["diffusion", "gain_mean"] == pytest.approx(
        mean_interval([0.10, 0.02])[1]
    )
    four = pd.concat([runs, runs.assign(seed=runs["seed"] + 2)], ignore_index=True)  # seeds 0-3 on two generated sets
    four.loc[four["arm"] == "diffusion", "generated_set"] = four["seed"] % 2
    four.loc[(four["arm"] == "diffusion") & (four["seed"] == 3), "test_accuracy"] += 0.04
    table = accuracy_table(four, "kfold", "synthetic").set_index("arm")
    assert table.loc["diffusion", "interval_over"].startswith("2 generated sets")
    covers = "pair and noise sampling and classifier noise, not diffusion training"
    assert covers in table.loc["diffusion", "interval_over"]
    # set 0: seeds 0, 2 (gains 0.10, 0.10); set 1: seeds 1, 3 (0.02, 0.06)
    assert table.loc["diffusion", "gain_ci95_high"] - table.loc["diffusion", "gain_mean"] == pytest.approx(
        mean_interval([0.10, 0.04])[1]
    )


def test_published_rows_only_beside_urbansound8k():
    assert not accuracy_table(_runs(), "kfold", "synthetic")["arm"].str.startswith("published").any()
    assert "57.8" not in markdown_table(accuracy_table(_runs(), "kfold", "synthetic"))


def test_markdown_shows_percentages_added_clips_and_the_interval_units():
    text = markdown_table(accuracy_table(_runs(), "kfold", "urbansound8k"))
    assert "| all | baseline | kfold | 4 | 0 | 55.0 ± 5.8 |" in text
    assert "| all | diffusion | kfold | 4 | 20 | 61.5 ± 1.9 | 6.5 (" in text
    assert "| 2 folds, corrected for shared training clips (seeds averaged within each) |" in text
    assert "| published diffusion |" in text and "57.8" in text and "nan" not in text


def test_low_data_settings_sit_side_by_side_and_pair_within_their_split():
    low = _runs().assign(labelled_per_class="50", split=lambda t: t["split"] + "-n50")
    low["test_accuracy"] -= 0.2
    table = accuracy_table(pd.concat([_runs(), low]), "kfold", "synthetic")
    assert list(zip(table["labelled_per_class"], table["arm"]))[:4] == [
        ("50", "baseline"),
        ("50", "diffusion"),
        ("all", "baseline"),
        ("all", "diffusion"),
    ]
    assert table.loc[0, "accuracy_mean"] == pytest.approx(0.35)
    assert table.loc[1, "gain_mean"] == pytest.approx(0.065)


def test_pivot_has_a_row_per_setting_and_a_gain_with_its_interval_per_arm():
    low = _runs().assign(labelled_per_class="50", split=lambda t: t["split"] + "-n50")
    low["test_accuracy"] -= 0.2
    low.loc[low["arm"] == "diffusion", "test_accuracy"] += 0.1
    table = accuracy_table(pd.concat([_runs(), low]), "kfold", "urbansound8k")
    pivot = gain_pivot(table)
    assert list(pivot["labelled_per_class"]) == ["50", "all"]  # the published rows are left out
    assert list(pivot.columns) == [
        "labelled_per_class",
        "real_clips",
        "baseline_accuracy",
        "diffusion_gain",
        "diffusion_ci95_low",
        "diffusion_ci95_high",
    ]
    assert pivot["baseline_accuracy"].tolist() == pytest.approx([0.35, 0.55])
    assert pivot["diffusion_gain"].tolist() == pytest.approx([0.165, 0.065])
    all_row = table[(table["labelled_per_class"] == "all") & (table["arm"] == "diffusion")].iloc[0]
    assert pivot["diffusion_ci95_low"].iloc[1] == pytest.approx(all_row["gain_ci95_low"])
    text = pivot_markdown(pivot)
    assert "| labelled per class | real training clips | baseline accuracy % | diffusion |" in text
    low_all = all_row["gain_ci95_low"] * 100
    assert f"| all | 900 | 55.0 | 6.5 ({low_all:.1f} to " in text and "| 50 | 900 | 35.0 | 16.5 (" in text


def test_a_pivot_of_the_baseline_alone_has_no_empty_arm_column():
    runs = _runs()
    text = pivot_markdown(gain_pivot(accuracy_table(runs[runs["arm"] == "baseline"], "kfold", "synthetic")))
    assert (
        "| labelled per class | real training clips | baseline accuracy % |\n|---|---|---|\n| all | 900 | 55.0 |\n"
        in text
    )


def test_runs_frame_reads_the_low_data_setting():
    metrics = {
        "split": "fold1-n50",
        "arm": "baseline",
        "seed": 0,
        "test_accuracy": 0.5,
        "chosen_epoch": 2,
        "published_protocol": {"best_test_accuracy": 0.6},
        "confusion_matrix": [[1, 1], [0, 2]],
        "train_clips": {"real": 50, "generated": 0},
    }
    frame = runs_frame([{**metrics, "train_per_class": 50}, {**metrics, "split": "fold1", "train_per_class": None}])
    assert list(frame["labelled_per_class"]) == ["50", "all"]
    assert list(frame["test_clips"]) == [4, 4]  # from the confusion matrix


def _judged(origin, rows):
    """score rows (class, predicted) of one origin."""
    return pd.DataFrame([{"origin": origin, "class": c, "predicted": p} for c, p in rows])


def test_fidelity_sets_every_source_beside_real_clips_no_judge_heard():
    scores = pd.concat(
        [
            _judged("diffusion", [("siren", "siren")] * 3 + [("siren", "drilling"), ("dog_bark", "gun_shot")]),
            _judged("sources", [("siren", "siren")] * 4 + [("dog_bark", "dog_bark")]),
            _judged("mel_average", [("siren", "drilling")] * 4 + [("dog_bark", "dog_bark")]),
        ]
    )
    held_out = pd.DataFrame({"class": ["siren", "siren", "dog_bark"], "predicted": ["siren", "drilling", "dog_bark"]})
    table = fidelity_table({"fold1": scores}, {"fold1": held_out}).set_index("class")
    # the ladder's order, from real clips no judge heard to the generated ones
    assert [c for c in table.columns if not c.endswith("_clips")] == [
        "labelled_per_class",
        "held_out",
        "sources",
        "diffusion",
        "mel_average",
    ]
    assert table.loc["siren", "diffusion"] == 0.75 and table.loc["siren", "held_out"] == 0.5
    assert table.loc["siren", "sources"] == 1.0 and table.loc["siren", "mel_average"] == 0.0
    assert table.loc["dog_bark", "diffusion"] == 0.0 and table.loc["siren", "diffusion_clips"] == 4
    text = fidelity_markdown(table.reset_index())
    assert "| labelled per class | class | held-out real % | sources % | diffusion % | mel average % |" in text
    assert "| all | siren | 50.0 | 100.0 | 75.0 | 0.0 |" in text
    assert "| all | **mean over classes** | 75.0 | 100.0 | 37.5 | 50.0 |" in text
    assert "never heard them" in text


def test_fidelity_keeps_each_setting_of_labelled_clips_apart_and_averages_its_splits():
    full = _judged("diffusion", [("siren", "siren"), ("siren", "drilling")])
    low = _judged("diffusion", [("siren", "drilling")] * 2)
    other = _judged("diffusion", [("siren", "siren")] * 2)
    held_out = pd.DataFrame({"class": ["siren"], "predicted": ["siren"]})
    scores = {"fold1": full, "fold1-n50": low, "fold2-n50": other}
    table = fidelity_table(scores, {split: held_out for split in scores})
    assert list(table["labelled_per_class"]) == ["50", "all"]
    assert list(table["diffusion"]) == [0.5, 0.5] and list(table["diffusion_clips"]) == [4, 2]
    assert "| 50 | siren | 100.0 | 50.0 |" in fidelity_markdown(table)


def test_novelty_sets_each_origins_median_distance_beside_the_validation_clips(tmp_path):
    from PIL import Image

    from diffaug.plots import novelty_plot

    def distances(origin, cls, features, judge):
        return pd.DataFrame({"origin": origin, "class": cls, "feature_distance": features, "judge_distance": judge})

    unseen = distances("validation", "siren", [10.0, 20.0], [1.0, 2.0])
    novelty = {
        "fold1": pd.concat(
            [
                distances("diffusion", "siren", [1.0, 2.0, 9.0], [0.1, 0.2, 0.3]),
                distances("sample", "siren", [5.0], [0.5]),
                unseen,
            ]
        ),
        "fold2": pd.concat([distances("diffusion", "siren", [3.0], [0.3]), unseen]),
        "fold1-n50": pd.concat([distances("diffusion", "siren", [7.0], [0.7]), unseen]),
    }
    clips = novelty_clips(novelty)
    table = novelty_table(clips).set_index(["labelled_per_class", "class"])
    assert list(table.columns) == [
        f"{origin}_{distance}"
        for origin in ("validation", "diffusion", "sample")
        for distance in ("feature_distance", "judge_distance")
    ]
    # the median of each split's clips, then the mean over the setting's splits
    assert table.loc[("all", "siren"), "diffusion_feature_distance"] == 2.5
    assert table.loc[("all", "siren"), "validation_judge_distance"] == 1.5
    assert table.loc[("50", "siren"), "diffusion_feature_distance"] == 7.0
    assert math.isnan(table.loc[("50", "siren"), "sample_feature_distance"])
    text = novelty_markdown(table.reset_index())
    assert "| labelled per class | class | validation | diffusion | sample |" in text
    assert "| all | siren | 15 / 1.50 | 2 / 0.25 | 5 / 0.50 |" in text and "validation clips" in text
    novelty_plot(clips, tmp_path / "novelty.png")
    assert Image.open(tmp_path / "novelty.png").size[0] > 300


def test_runtime_table_counts_what_each_stage_made_per_device():
    metrics = [{"runtime": "cuda bf16"}] * 3 + [{"runtime": "cpu fp32"}]
    records = {"train_diffusion": [{"runtime": "cuda bf16"}], "interpolate": [{"runtime": "cpu fp32"}] * 10}
    assert list(runtime_table(metrics, records).columns) == ["stage", "runtime", "made"]
    table = runtime_table(metrics, records)
    assert table.values.tolist() == [
        ["train_diffusion", "cuda bf16", 1],
        ["interpolate", "cpu fp32", 10],
        ["train_classifier", "cpu fp32", 1],
        ["train_classifier", "cuda bf16", 3],
    ]


def test_figures_are_written_as_png(tmp_path):
    import torch
    from PIL import Image

    from diffaug.plots import accuracy_plot, confusion_plot, examples_plot, labelled_plot
    from diffaug.synthetic import CLASSES

    accuracy_plot(_runs(), tmp_path / "accuracy.png", "urbansound8k")
    low = _runs().assign(labelled_per_class="50", split=lambda t: t["split"] + "-n50")
    labelled_plot(pd.concat([_runs(), low[low["arm"] == "baseline"]]), tmp_path / "labelled.png")
    assert Image.open(tmp_path / "labelled.png").size[0] > 300
    eye = torch.eye(10, dtype=torch.long).tolist()
    metrics = [{"split": "fold1", "arm": v, "confusion_matrix": eye, "classes": list(CLASSES)} for v in ("a", "b")]
    confusion_plot(metrics, tmp_path / "confusion.png")
    low = [{**m, "split": "fold1-n50", "train_per_class": 50} for m in metrics]
    confusion_plot(metrics + low, tmp_path / "by_setting.png")
    images = {c: torch.rand(1, 16, 16) for c in CLASSES}
    examples_plot(images, dict(list(images.items())[:3]), tmp_path / "examples.png")
    sizes = {name: Image.open(tmp_path / f"{name}.png").size for name in ("accuracy", "confusion", "examples")}
    assert sizes["confusion"][0] > sizes["confusion"][1]  # one panel per arm, side by side
    assert Image.open(tmp_path / "by_setting.png").size[1] > 1.8 * sizes["confusion"][1]  # a row per setting
    assert all(w > 300 and h > 300 for w, h in sizes.values())
    fifty = [f"class_{k:02d}_with_a_long_name" for k in range(50)]
    eye = torch.eye(50, dtype=torch.long).tolist()
    confusion_plot([{"split": "fold1", "arm": "a", "confusion_matrix": eye, "classes": fifty}], tmp_path / "c50.png")
    assert Image.open(tmp_path / "c50.png").size[0] > 1.5 * sizes["confusion"][0] / 2  # a panel grows with its classes
    examples_plot({c: torch.rand(1, 16, 16) for c in fifty}, {}, tmp_path / "e50.png")
    width, height = Image.open(tmp_path / "e50.png").size
    assert width == sizes["examples"][0] and height > 4 * sizes["examples"][1]  # five rows of ten classes


def _history(epochs, shift):
    return [{"epoch": e, "loss": 2 / e + shift, "val_accuracy": 0.1 * e, "test_accuracy": 0.0} for e in epochs]


def test_training_curves_have_a_column_per_setting_of_labelled_clips(tmp_path):
    from PIL import Image

    from diffaug.plots import classifier_training_plot, diffusion_training_plot

    metrics = [
        {"split": "fold1", "train_per_class": None, "arm": v, "seed": s, "history": _history(range(1, 6), s / 10)}
        for v in ("diffusion", "baseline")
        for s in (0, 1)
    ]
    classifier_training_plot(metrics, tmp_path / "one.png")
    low = [{**m, "split": "fold1-n50", "train_per_class": 50} for m in metrics]
    classifier_training_plot(metrics + low, tmp_path / "two.png")
    one, two = (Image.open(tmp_path / f"{name}.png").size for name in ("one", "two"))
    assert two[0] > 1.6 * one[0] and two[1] == one[1]
    losses = {split: [1 / (1 + step) for step in range(200)] for split in ("fold1", "fold2", "fold1-n50")}
    diffusion_training_plot(losses, tmp_path / "diffusion.png")
    diffusion_training_plot({"fold1": losses["fold1"]}, tmp_path / "single.png")
    assert Image.open(tmp_path / "diffusion.png").size[0] > 1.6 * Image.open(tmp_path / "single.png").size[0]


def test_spectrogram_images_are_small_pngs_with_low_bands_at_the_bottom():
    import io

    import torch
    from PIL import Image

    from diffaug.plots import spectrogram_png

    image = torch.zeros(64, 40)
    image[0] = 1.0  # the lowest band is the loudest
    png = Image.open(io.BytesIO(spectrogram_png(image))).convert("RGB")
    assert png.size == (40, 64)
    assert sum(png.getpixel((5, 63))) > 500 and sum(png.getpixel((5, 0))) < 30  # bright at the bottom
    assert len(spectrogram_png(torch.rand(64, 87, generator=torch.Generator().manual_seed(0)))) < 3500  # 4 bits a bin


def test_listening_page_clips_are_small_ogg_opus_that_sound_like_the_clip():
    import base64
    import io

    import soundfile as sf
    import torch

    from diffaug.audio import resample
    from diffaug.listen import display_image, opus_data_uri

    def decoded(url):
        assert url.startswith("data:audio/ogg;base64,")
        data = base64.b64decode(url.removeprefix("data:audio/ogg;base64,"))
        return data, *sf.read(io.BytesIO(data), dtype="float32")

    t = torch.arange(22050) / 22050
    noise = 0.05 * torch.randn(22050, generator=torch.Generator().manual_seed(0))
    tones = 0.5 * torch.sin(2 * torch.pi * 440 * t) * torch.exp(-3 * t) + 0.1 * torch.sin(2 * torch.pi * 3000 * t)
    clip = tones + noise
    data, back, rate = decoded(opus_data_uri(clip, 22050))
    info = sf.info(io.BytesIO(data))
    assert (info.format, info.subtype, rate, len(back)) == ("OGG", "OPUS", 24000, 24000)  # 1 s, at Opus's rate
    assert len(data) < 5000  # 32 kbit/s; a 16-bit WAV of the clip takes 44 kB
    back = resample(torch.from_numpy(back), 24000, 22050)
    assert float(back.square().mean() / clip.square().mean()) == pytest.approx(1, abs=0.1)  # as loud
    heard, original = display_image(back, 22050), display_image(clip, 22050)
    loud = original > 0.5  # bins within 40 dB of the loudest
    assert float((heard - original).abs()[loud].mean()) * 80 < 3  # dB; drawing the noise afresh moves it 2 dB
    assert float((display_image(noise, 22050) - original).abs()[loud].mean()) * 80 > 10  # where another sound is far

    _, louder, _ = decoded(opus_data_uri(8 * clip, 22050))
    assert 0.9 < abs(louder).max() < 1.05  # scaled down to a 0.99 peak rather than clipped
    assert decoded(opus_data_uri(resample(clip, 22050, 44100), 44100))[2] == 48000


@pytest.mark.parametrize("classes, pairs_per_class, shown", [(3, 5, 3), (10, 2, 10), (50, 1, 20)])
def test_the_listening_page_keeps_to_its_budget_of_pairs(classes, pairs_per_class, shown):
    from diffaug.listen import PAIRS_ON_PAGE, pairs_on_page

    names = [f"class_{k:02d}" for k in range(classes)]
    pairs = pd.DataFrame(
        {"class": [n for n in names for _ in range(5)], "pair": [f"{n}-{i}" for n in names for i in range(5)]}
    )
    shown_pairs = pairs_on_page(pairs.sample(frac=1, random_state=0).sort_values("pair"))
    assert sorted(set(shown_pairs["class"])) == names[:shown] and len(shown_pairs) <= max(PAIRS_ON_PAGE, 3 * 5)
    assert (shown_pairs.groupby("class").size() == pairs_per_class).all()
    # each class's first pairs
    assert (shown_pairs["pair"].str.rsplit("-", n=1).str[1].astype(int) < pairs_per_class).all()


def _metrics() -> list[dict]:
    """metrics.json of two seeds of the baseline and of diffusion on one split of two classes."""
    return [
        {
            "split": "fold1",
            "train_per_class": None,
            "arm": arm,
            "seed": seed,
            "generated_set": None if arm == "baseline" else 0,
            "train_clips": {"real": 40, "generated": 0 if arm == "baseline" else 10},
            "confusion_matrix": [[4, 1], [2, 3]],
            "test_accuracy": 0.5 + 0.1 * seed + (0 if arm == "baseline" else 0.05),
            "published_protocol": {"best_test_accuracy": 0.9},
            "chosen_epoch": 2,
            "classes": ["dog", "siren"],
            "per_class_accuracy": {"dog": 0.8, "siren": 0.6},
            "runtime": "cpu fp32",
            "history": _history(range(1, 4), seed / 10),
        }
        for arm in ("baseline", "diffusion")
        for seed in (0, 1)
    ]


def test_the_report_tables_count_skipped_clips_beside_this_runs_rows_only():
    judges = {"train_judge": [{"runtime": "cpu fp32"}] * 2}
    tables = report_tables(_metrics(), "kfold", "urbansound8k", 3, pd.DataFrame(), judges)
    assert list(tables) == ["table", "pivot", "per_class", "fidelity", "runtimes"]
    table = tables["table"]
    assert list(table["arm"]) == ["baseline", "diffusion", "published baseline", "published diffusion"]
    assert table["skipped_clips"].tolist()[:2] == [3, 3] and table["skipped_clips"].isna().tolist()[2:] == [True] * 2
    assert list(tables["pivot"].columns[-3:]) == ["diffusion_gain", "diffusion_ci95_low", "diffusion_ci95_high"]
    assert tables["runtimes"].values.tolist() == [["train_judge", "cpu fp32", 2], ["train_classifier", "cpu fp32", 4]]


def test_the_markdown_report_says_only_what_applies():
    tables = report_tables(_metrics(), "kfold", "synthetic", 0, pd.DataFrame(), {})
    text = report_markdown(tables, generated_sets=1, skipped=0)
    assert text.startswith("# Gain per arm and labelled clips\n\n| labelled per class | real training clips |")
    assert text.index("# Accuracy per arm\n\n|") < text.index("# Where each stage ran\n\n| stage |")
    assert "Each split has" not in text and "unusable" not in text and "keep their class" not in text
    scores = pd.DataFrame({"origin": ["diffusion"] * 2, "class": ["dog"] * 2, "predicted": ["dog", "siren"]})
    fidelity = fidelity_table({"fold1": scores}, {})
    text = report_markdown({**tables, "fidelity": fidelity}, generated_sets=3, skipped=2)
    assert (
        "\nEach split has 3 generated sets; the k-th classifier seed (counting from 0) trains on set k mod 3.\n" in text
    )
    assert "\n2 unusable clip(s) were skipped: see results/data/rejected.csv.\n" in text
    assert text.index("# Do generated clips keep their class?") < text.index("# Where each stage ran")


def test_the_report_reads_tables_by_split_and_records_by_stage(tmp_path):
    for split, generated_set in (("fold1", 0), ("fold1", 1), ("fold2", 0)):
        (tmp_path / "scores" / split / f"set{generated_set}").mkdir(parents=True)
        pd.DataFrame({"clip": [f"{split}-{generated_set}"]}).to_csv(
            tmp_path / "scores" / split / f"set{generated_set}" / "a.csv"
        )
    tables = tables_by_split(sorted(str(path) for path in tmp_path.glob("scores/*/*/*.csv")))
    assert {split: list(table["clip"]) for split, table in tables.items()} == {
        "fold1": ["fold1-0", "fold1-1"],
        "fold2": ["fold2-0"],
    }
    folders = [tmp_path / f"{kind}/fold1/set0/dog" for kind in ("generated", "reconstructed", "sampled")]
    folders.insert(0, tmp_path / "diffusion/fold1/model")
    names = ("training", "generation", "generation", "generation")
    for folder, name, record in zip(folders, names, ("gpu", "cpu", "mps", "xpu")):
        folder.mkdir(parents=True)
        (folder / f"{name}.json").write_text(json.dumps({"runtime": record, "loss": [1.0, 0.5]}))
    records = stage_records(folders)
    assert {stage: [r["runtime"] for r in found] for stage, found in records.items()} == {
        "train_diffusion": ["gpu"],
        "interpolate": ["cpu"],
        "reconstruct": ["mps"],
        "sample": ["xpu"],
    }
    assert list(stage_records(folders[:1])) == [
        "train_diffusion",
        "interpolate",
    ]  # reconstruct, sample only where they ran
    assert diffusion_losses(folders) == {"fold1": [1.0, 0.5]}
    (folders[0] / "training.json").write_text(json.dumps({"runtime": "gpu"}))
    with pytest.raises(ValueError, match="training.json: no per-step training loss recorded; rerun train_diffusion"):
        diffusion_losses(folders)


def test_the_report_draws_diffusion_training_only_given_its_losses(tmp_path):
    from PIL import Image

    from diffaug.plots import report_figures

    assert list(report_figures(_metrics(), "synthetic")) == [
        "plot",
        "labelled_plot",
        "confusion",
        "classifier_training",
    ]
    figures = report_figures(_metrics(), "synthetic", {"fold1": [1.0, 0.5, 0.25]})
    for name, draw in figures.items():
        draw(tmp_path / f"{name}.png")
    assert all(Image.open(tmp_path / f"{name}.png").size[0] > 300 for name in figures)
    assert "diffusion_training" in figures


def test_the_listening_page_plays_each_pair_under_its_heading():
    from diffaug.features import FeatureSpec
    from diffaug.listen import PairSounds, listening_page

    spec = FeatureSpec(num_samples=2205)
    pairs = [
        {"pair": f"{c}-00000", "class": c, "source_a": f"{c}A", "source_b": f"{c}B", "recording_a": 1, "recording_b": 2}
        for c in ("dog", "siren")
    ]
    tone = torch.sin(torch.arange(2205) / 5)
    real, averages = {p[f"source_{s}"]: tone for p in pairs for s in "ab"}, {p["pair"]: tone for p in pairs}
    sounds = PairSounds(real, {}, {}, {}, averages)
    text = listening_page(("fold1", "0"), pd.DataFrame({"class": ["cat", "dog", "siren"]}), pairs, sounds, None, spec)
    assert text.count("<audio ") == 2 * 3 and "round trip" not in text and "Mel average:" in text
    assert "<title>Listen: split fold1, generated set 0</title>" in text
    assert "the first 1 pair(s) of each of the first 2 of its 3 classes (sorted)" in text
    assert "<h3>pair dog-00000: A = dogA (recording 1), B = dogB (recording 2)</h3>" in text
    assert "plays its first 0.10 s, as the classifier reads it" in text


def test_a_missing_mel_average_names_its_pair_and_the_rule_to_rerun(tmp_path):
    from diffaug.features import FeatureSpec, save_feature_sets
    from diffaug.listen import mel_average_sounds

    spec = FeatureSpec(n_mels=16, num_samples=4096)
    averages = (torch.rand(1, 1, 16, 9), torch.tensor([0]), ["dog-00000"])
    save_feature_sets(tmp_path / "avg.safetensors", {"train": averages})
    pairs, path = [{"pair": "dog-00000"}, {"pair": "dog-00001"}], str(tmp_path / "avg.safetensors")
    with pytest.raises(ValueError, match=r"avg.safetensors: no mel average of pair dog-00001 of set0.csv; rerun"):
        mel_average_sounds(pairs, path, "set0.csv", spec, torch.Generator().manual_seed(0))
    assert list(mel_average_sounds(pairs[:1], path, "set0.csv", spec, torch.Generator().manual_seed(0))) == [
        "dog-00000"
    ]
