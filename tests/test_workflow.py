"""The whole DAG on the tiny config, through the real `snakemake` command."""

import base64
import http.server
import io
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from functools import partial

import pandas as pd
import pytest
import soundfile as sf
import yaml
from helpers import (
    CONFIGS,
    alias_bomb,
    readme_rules,
    rerun_table,
    snakemake,
    snakemake_command,
    without_slurm_controller,
)
from layout_data import esc50_category, write_esc50, write_folders

pytestmark = pytest.mark.slow


def test_the_table_compares_every_arm(finished_run):
    table = pd.read_csv(finished_run / "results" / "tables" / "accuracy.csv").set_index("arm")
    arms = [
        "baseline",
        "round_trip",
        "reconstruction",
        "diffusion",
        "mel_average",
        "specaugment",
        "diffusion_specaugment",
    ]
    assert list(table.index) == arms  # as the config lists them; no published rows beside synthetic clips
    assert (table.loc[arms, "runs"] == 2).all()  # two seeds, one fold
    assert table.loc[arms, "accuracy_mean"].between(0, 1).all()
    ladder = ["round_trip", "reconstruction", "diffusion", "mel_average"]
    assert (table.loc[ladder, "added_clips"] == 10).all()  # every adding arm adds as many
    assert table.loc["diffusion", "interval_over"] == "2 seeds: classifier noise only; one generated set"
    markdown = (finished_run / "results" / "tables" / "accuracy.md").read_text()
    assert "| all | diffusion | kfold | 2 | 10 |" in markdown
    assert "Do generated clips keep their class?" in markdown
    assert "| train_classifier | cpu fp32 | 14 |" in markdown and "| interpolate | cpu fp32 | 10 |" in markdown
    assert "| reconstruct | cpu fp32 | 10 |" in markdown and "| train_judge | cpu fp32 | 2 |" in markdown
    assert (finished_run / "results" / "plots" / "accuracy.png").stat().st_size > 1000
    pivot = pd.read_csv(finished_run / "results" / "tables" / "gain_pivot.csv")
    assert pivot["diffusion_gain"].iloc[0] == pytest.approx(table.loc["diffusion", "gain_mean"])
    header = "| labelled per class | real training clips | baseline accuracy % | round_trip | reconstruction |"
    assert header + " diffusion | mel_average | specaugment | diffusion_specaugment |" in markdown  # the config's order
    assert (finished_run / "results" / "plots" / "accuracy_vs_labelled.png").stat().st_size > 1000


def test_every_stage_left_its_outputs(finished_run):
    results = finished_run / "results"
    metrics = json.loads((results / "models" / "fold1" / "diffusion" / "seed1" / "metrics.json").read_text())
    assert metrics["train_clips"]["generated"] == 10  # 2 per class, half kept by the confidence filter
    assert metrics["runtime"] == "cpu fp32" and metrics["generated_set"] == 0
    drawn = pd.read_csv(results / "pairs" / "fold1" / "set0.csv")
    for generator in ("round_trip", "reconstruction", "diffusion", "mel_average"):
        run = json.loads((results / "models" / "fold1" / generator / "seed0" / "metrics.json").read_text())
        assert run["train_clips"]["generated"] == 10, generator  # the same share of the same pairs
        kept = pd.read_csv(results / "scores" / "fold1" / "set0" / f"{generator}_kept.csv")
        assert len(kept) == 20 and kept["kept"].sum() == 10 and kept["confidence"].between(0, 1).all()
        assert kept[["pair", "source_a", "source_b"]].equals(drawn[["pair", "source_a", "source_b"]])
    # each pair lies in one judge half and is scored by the judge of the other half
    split = json.loads((results / "splits" / "fold1.json").read_text())
    half_of = {clip: half for half, clips in enumerate(split["judge_halves"]) for clip in clips}
    assert (drawn["source_a"].map(half_of) == drawn["half"]).all() and (
        drawn["source_b"].map(half_of) == drawn["half"]
    ).all()
    scores = pd.read_csv(results / "scores" / "fold1" / "set0" / "diffusion.csv").merge(
        drawn, left_on="clip", right_on="pair"
    )
    assert (scores["judge"] == 1 - scores["half"]).all()
    for half in (0, 1):
        judge = json.loads((results / "judges" / "fold1" / f"half{half}" / "metrics.json").read_text())
        assert judge["train_clips"] == len(split["judge_halves"][half])
        held_out = pd.read_csv(results / "judges" / "fold1" / f"half{half}" / "held_out.csv")
        assert list(held_out["clip"]) == split["judge_halves"][1 - half]
    fidelity = pd.read_csv(results / "tables" / "class_fidelity.csv")
    origins = ["held_out", "sources", "round_trip", "reconstruction", "diffusion", "mel_average"]
    assert [c for c in fidelity.columns if c in origins] == origins and len(fidelity) == 10
    assert set(fidelity["labelled_per_class"].astype(str)) == {"all"}
    assert (fidelity["diffusion_clips"] == 2).all() and (fidelity["sources_clips"] == 2).all()
    generation = json.loads((results / "generated" / "fold1" / "set0" / "siren" / "generation.json").read_text())
    assert generation["runtime"] == "cpu fp32"
    reconstructed = pd.read_csv(results / "reconstructed" / "fold1" / "set0" / "siren" / "pairs.csv")
    assert (reconstructed["source_b"] == reconstructed["source_a"]).all() and (reconstructed["alpha"] == 0).all()
    assert len(metrics["confusion_matrix"]) == 10 and 1 <= metrics["chosen_epoch"] <= 3
    assert "test" in metrics["published_protocol"]["note"]
    pairs = pd.read_csv(results / "generated" / "fold1" / "set0" / "siren" / "pairs.csv")
    assert len(pairs) == 2 and (pairs["recording_a"] != pairs["recording_b"]).all()
    manifest = pd.read_csv(results / "data" / "manifest.csv").set_index("id")
    assert set(pairs["source_a"]) | set(pairs["source_b"]) <= set(split["train"])
    assert (manifest.loc[split["test"], "fold"] == 1).all()
    for rule in ("prepare_dataset", "manifest", "train_diffusion", "train_judge", "reconstruct", "report"):
        assert list((results / "logs").glob(f"{rule}*")), rule
        assert list((results / "benchmarks").glob(f"{rule}*")), rule


def test_training_curves_are_plotted(finished_run):
    for name in ("classifier_training", "diffusion_training"):
        assert (finished_run / "results" / "plots" / f"{name}.png").stat().st_size > 5000, name


PROBE = """<script>
// per player, its duration once its metadata loads and where it ended when played through, muted (-1: it
// failed; null: nothing within 20 s), and whether each image decoded; POSTed to /probe, by the page that
// frames this one where one does
const duration = a => new Promise(done => {
  const check = () => a.error ? done(-1) : a.readyState >= 1 ? done(a.duration) : null;
  a.addEventListener("loadedmetadata", check);
  a.addEventListener("error", () => done(-1));
  check();
  setTimeout(() => done(null), 20000);
});
const ending = a => new Promise(done => {
  a.addEventListener("ended", () => done(a.currentTime));
  a.addEventListener("error", () => done(-1));
  a.muted = true;
  a.play().catch(error => done(String(error)));
  setTimeout(() => done(null), 20000);
});
window.addEventListener("load", async () => {
  const players = [...document.querySelectorAll("audio")];
  const durations = await Promise.all(players.map(duration));
  const ends = await Promise.all(players.map(ending));
  const found = players.map((a, i) => ({
    label: a.title, pair: a.closest("div.row").previousElementSibling.textContent,
    duration: durations[i], ended: ends[i]
  }));
  const images = [...document.querySelectorAll("img")].map(img => img.complete && img.naturalWidth > 0);
  const text = JSON.stringify({players: found, images});
  if (window.parent !== window) window.parent.postMessage(text, "*");
  else fetch("/probe", {method: "POST", body: text});
});
</script>"""

REPORT_FRAME = """<!DOCTYPE html><html><body>
<script>window.addEventListener("message", m => fetch("/probe", {method: "POST", body: m.data}));</script>
<iframe src="%s" class="w-full h-screen"></iframe></body></html>"""
"""The listening page as the single-file `snakemake --report` shows it: an iframe whose src is the page as
a data: URL (snakemake/report/html_reporter/template/components/content.js)."""


CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def _chromium() -> str:
    """Headless Chromium: found on the PATH or, as root on Debian, installed now (Debian's `chromium`,
    about a minute), as the SLURM test installs its cluster, so that `make test` passes on a fresh machine."""
    if not any(map(shutil.which, CHROMIUM)) and os.geteuid() == 0 and shutil.which("apt-get"):
        quiet = {"check": True, "capture_output": True, "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}}
        subprocess.run(["apt-get", "update", "-qq"], **quiet)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], **quiet)
    for name in CHROMIUM:
        if found := shutil.which(name):
            return found
    pytest.fail(
        "headless Chromium checks the listening page: apt-get install chromium (as root, this test installs it), "
        "or deselect this test with -m 'not browser'"
    )


class _Folder(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; what a page POSTs lands in the server's `reports`."""

    def do_POST(self):
        self.server.reports.put(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _probe(folder, page: str) -> dict:
    """What PROBE found on `page` in `folder`, or on the page it frames, in headless Chromium. Served over
    HTTP so that the probe can POST what it found when it has: --dump-dom reads the page once its virtual
    time runs out, which runs ahead of playback, before the clips have played through."""
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Folder, directory=str(folder))) as server:
        server.reports = queue.Queue()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={folder}/chromium"]
        command.append("--autoplay-policy=no-user-gesture-required")  # play() without a click
        url = f"http://127.0.0.1:{server.server_port}/{page}"
        browser = subprocess.Popen([*command, url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            return json.loads(server.reports.get(timeout=120))
        except queue.Empty:
            pytest.fail(f"{page}: no player reported back within 120 s")
        finally:
            browser.terminate()
            browser.wait(timeout=60)
            server.shutdown()


def _lasts(seconds: float, expected: float) -> bool:
    """Whether a player's duration is `expected`: Chromium counts Opus's pre-skip (6.5 ms) in it."""
    return -1e-3 <= seconds - expected <= 0.01


def _check_players(found: dict, results, opened: str) -> None:
    """Every player on the page loaded and played to its end, each as long as its clip."""
    players = pd.DataFrame(found["players"])
    # classes x pairs x (A and B real and round trip, A reconstructed, interpolated, averaged)
    assert len(players) == 10 * 2 * 7, opened
    assert (players["duration"] > 0).all(), f"{opened}:\n" + players[~(players["duration"] > 0)].to_string()
    played = (pd.to_numeric(players["ended"], errors="coerce") - players["duration"]).abs() < 1e-3
    assert played.all(), f"{opened}: not played to the end\n" + players[~played].to_string()
    assert len(found["images"]) == len(players) and all(found["images"]), opened  # every spectrogram decoded
    pairs = pd.read_csv(results / "pairs" / "fold1" / "set0.csv").set_index("pair")
    for heading, group in players.groupby("pair"):
        pair, a, b = re.fullmatch(r"pair (\S+): A = (\S+) \(recording \d+\), B = (\S+) \(.*", heading).groups()
        assert (a, b) == tuple(pairs.loc[pair, ["source_a", "source_b"]])  # the page names the pair's sources
        seconds = group.set_index("label")["duration"]
        wav = results / "generated" / "fold1" / "set0" / pairs.loc[pair, "class"] / f"{pair}.wav"
        assert _lasts(seconds["diffusion: A to B"], sf.info(wav).duration), (opened, pair)
        assert _lasts(seconds["A: reconstruction"], sf.info(wav).duration), (opened, pair)
        assert _lasts(seconds["mel average of A and B"], 1.0), (opened, pair)  # the classifier's 1 s
        for side in "AB":  # up to one slice of the 16 x 16 mel image, and its round trip as long
            assert 0 < seconds[f"{side}: real"] <= 22079 / 22050 + 0.01, (opened, pair)
            assert seconds[f"{side}: round trip"] == pytest.approx(seconds[f"{side}: real"], abs=1e-3)


@pytest.mark.browser
def test_every_clip_on_the_listening_page_plays_in_a_browser(finished_run, tmp_path):
    """On the page on its own, and framed as the single-file report frames it: the report, made here, holds
    the page as the data: URL that REPORT_FRAME frames."""
    from snakemake.report.common import data_uri_from_file

    results = finished_run / "results"
    page = (results / "report" / "listen.html").read_text()
    first = re.search(r'src="data:audio/ogg;base64,([^"]+)"', page)[1]
    assert sf.info(io.BytesIO(base64.b64decode(first))).subtype == "OPUS"
    made = snakemake(finished_run, "--report", str(tmp_path / "snakemake_report.html"))
    assert made.returncode == 0, made.stderr[-3000:]
    embedded = data_uri_from_file(results / "report" / "listen.html")
    assert embedded in (tmp_path / "snakemake_report.html").read_text()
    assert len(embedded) <= 2 * 1024 * 1024, len(page)  # Chromium opens no longer URL
    (tmp_path / "listen.html").write_text(page.replace("</body>", PROBE + "</body>"))
    (tmp_path / "report.html").write_text(REPORT_FRAME % data_uri_from_file(tmp_path / "listen.html"))
    for opened in ("listen.html", "report.html"):
        _check_players(_probe(tmp_path, opened), results, opened)


def test_nothing_reruns_when_nothing_changed(finished_run):
    result = snakemake(finished_run, "-n")
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr


def test_the_same_settings_in_another_key_order_rerun_nothing(finished_run, tmp_path):
    from snakemake.utils import update_config

    merged = {}
    for path in CONFIGS:
        update_config(merged, yaml.safe_load(open(path)))
    (tmp_path / "sorted.yaml").write_text(yaml.safe_dump(merged, sort_keys=True))  # as any YAML dump writes it
    result = snakemake(finished_run, "-n", configs=[str(tmp_path / "sorted.yaml")])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]


def test_a_mistyped_config_key_is_explained(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("classifier: {widths: [4], hidden: 8, epochs: 1, batch_size: 8, learning_rate: 0.1, epoch: 3}\n")
    result = snakemake(tmp_path, "-n", configs=[*CONFIGS, str(bad)])
    assert result.returncode != 0
    assert "classifier: unknown key(s) epoch; allowed:" in result.stderr
    assert "Traceback" not in result.stderr


def test_command_line_text_gives_the_params_of_a_config_file(finished_run):
    """`--config` hands nested values over as text ("false", "3"): read as the config files' false and 3
    that they repeat, they change no params, and nothing reruns."""
    given = ["dataset={download: false}", "features={log: FALSE}", "classifier={epochs: 3, learning_rate: 0.001}"]
    result = snakemake(finished_run, "-n", "--config", *given)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]


def test_a_yaml_alias_bomb_is_refused_before_snakemake_walks_it(tmp_path):
    (tmp_path / "bomb.yaml").write_text(alias_bomb(8))  # 328 bytes for 54 million values: 27 s and 1.3 GB to sort
    result = snakemake(tmp_path, "-n", configs=[*CONFIGS, str(tmp_path / "bomb.yaml")], timeout=120)
    assert result.returncode != 0
    assert "config: expands to more than 10000 values (YAML aliases?), 54481005 of them under lol" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_renamed_variants_key_is_explained_from_the_command_line(tmp_path):
    result = snakemake(tmp_path, "-n", "--config", "variants=[baseline]")
    assert result.returncode != 0
    assert "variants: renamed to arms; rename the key" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_renamed_replicates_key_is_explained_from_the_command_line(tmp_path):
    result = snakemake(tmp_path, "-n", "--config", "generate={replicates: 2}")
    assert result.returncode != 0
    assert "generate.replicates: renamed to generate.sets; rename the key" in result.stderr
    assert "Traceback" not in result.stderr


def _urbansound8k_config(tmp_path, root):
    config = tmp_path / "real.yaml"
    config.write_text(f"dataset: {{layout: urbansound8k, root: '{root}', download: false}}\n")
    return [*CONFIGS, str(config)]


def test_an_urbansound8k_copy_runs_through_the_same_rules(paired_dataset, tmp_path):
    configs = _urbansound8k_config(tmp_path, paired_dataset[0])
    result = snakemake(tmp_path, "results/splits/fold1.json", configs=configs)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "prepare_dataset" not in result.stderr  # the user's copy is read, never written
    manifest = pd.read_csv(tmp_path / "results" / "data" / "manifest.csv")
    assert len(manifest) == len(paired_dataset[1])
    assert manifest["path"].str.startswith(str(paired_dataset[0])).all()


def _layout_config(tmp_path, dataset: dict, **sections) -> list[str]:
    """The tiny config on a dataset in another layout, with some sections replaced."""
    config = tmp_path / "layout.yaml"
    config.write_text(yaml.safe_dump({"dataset": dataset, **sections}))
    return [*CONFIGS, str(config)]


def test_esc50_runs_end_to_end_on_its_own_folds_and_classes(tmp_path):
    root = tmp_path / "ESC-50"
    write_esc50(root, classes=3, recordings_per_fold=2)
    dataset = {"layout": "esc50", "root": str(root), "max_seconds": 5.0}
    configs = _layout_config(tmp_path, dataset, protocol={"test_folds": [5]}, arms=["baseline", "diffusion"], seeds=[0])
    result = snakemake(tmp_path, configs=configs)
    assert result.returncode == 0, result.stderr[-5000:]
    results = tmp_path / "results"
    classes = [esc50_category(k) for k in range(3)]
    assert (results / "data" / "classes.txt").read_text().split() == classes
    assert sorted(p.name for p in (results / "generated" / "fold5" / "set0").iterdir()) == sorted(classes)
    metrics = json.loads((results / "models" / "fold5" / "diffusion" / "seed0" / "metrics.json").read_text())
    assert metrics["classes"] == classes and len(metrics["confusion_matrix"]) == 3
    assert (
        json.loads((results / "models" / "fold5" / "baseline" / "seed0" / "model.json").read_text())["classes"]
        == classes
    )
    table = pd.read_csv(results / "tables" / "accuracy.csv")
    assert list(table["arm"]) == ["baseline", "diffusion"] and (table["added_clips"].fillna(0) == [0, 3]).all()
    assert list(pd.read_csv(results / "tables" / "per_class.csv").columns[2:]) == classes
    assert classes[2] in (results / "report" / "listen.html").read_text()


def test_a_folder_per_class_runs_end_to_end_with_folds_dealt_by_file(tmp_path):
    root = tmp_path / "my sounds"
    write_folders(root, classes=3, recordings=6, takes=2)
    configs = _layout_config(
        tmp_path, {"layout": "folders", "root": str(root)}, arms=["baseline", "mel_average"], seeds=[0]
    )
    result = snakemake(tmp_path, configs=configs)
    assert result.returncode == 0, result.stderr[-5000:]
    results = tmp_path / "results"
    assert "each file counts as its own recording" in (results / "logs" / "manifest.log").read_text()
    manifest = pd.read_csv(results / "data" / "manifest.csv")
    assert sorted(set(manifest["fold"])) == [1, 2, 3, 4, 5] and set(manifest["class"]) == {
        "class_00",
        "class_01",
        "class_02",
    }
    fidelity = pd.read_csv(results / "tables" / "class_fidelity.csv")
    assert sorted(fidelity["class"]) == ["class_00", "class_01", "class_02"] and "mel_average" in fidelity.columns


def test_a_clip_added_to_a_class_folder_reruns_the_manifest(tmp_path):
    root = tmp_path / "sounds"
    write_folders(root, classes=2, recordings=5, takes=1)
    configs = _layout_config(tmp_path, {"layout": "folders", "root": str(root)}, arms=["baseline"])
    assert snakemake(tmp_path, "results/data/manifest.csv", configs=configs).returncode == 0
    assert "rule manifest" not in snakemake(tmp_path, "-n", "results/data/manifest.csv", configs=configs).stdout
    shutil.copy(root / "class_00" / "rec_0" / "take_0.wav", root / "class_00" / "rec_0" / "take_1.wav")
    assert "rule manifest" in snakemake(tmp_path, "-n", "results/data/manifest.csv", configs=configs).stdout


def test_layout_problems_stop_the_run_listing_the_rows(tiny_dataset, tmp_path):
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(tiny_dataset[0], root)
    meta_path = root / "metadata" / "UrbanSound8K.csv"
    meta = pd.read_csv(meta_path)
    meta.loc[3, "fold"] = 12
    meta.loc[5, "class"] = "thunder"
    meta.to_csv(meta_path, index=False)
    result = snakemake(tmp_path, "results/data/manifest.csv", configs=_urbansound8k_config(tmp_path, root))
    assert result.returncode != 0
    assert f"row 5: {meta.slice_file_name[3]}" in result.stderr and "fold outside 1-10" in result.stderr
    assert f"row 7: {meta.slice_file_name[5]}" in result.stderr and "unknown class" in result.stderr


def test_a_missing_dataset_is_explained_before_any_work(tmp_path):
    result = snakemake(tmp_path, "-n", configs=_urbansound8k_config(tmp_path, tmp_path / "nowhere"))
    assert result.returncode != 0
    assert "UrbanSound8K.csv not found" in result.stderr and "dataset.download: true" in result.stderr


def _snakemake_rule_graph(workdir, change: str) -> set[tuple[str, str]]:
    """(upstream, downstream) rule pairs of `snakemake --rulegraph` with `change` over the tiny config."""
    (workdir / "change.yaml").write_text(change + "\n")
    result = snakemake(workdir, "--rulegraph", configs=[*CONFIGS, str(workdir / "change.yaml")])
    assert result.returncode == 0, result.stderr[-3000:]
    names = dict(re.findall(r"^\s*(\d+)\[label = \"(\w+)\"", result.stdout, re.M))
    return {(names[a], names[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", result.stdout, re.M)}


def test_the_readme_rule_table_is_the_rule_graph(tmp_path):
    listed = {(upstream, rule) for rule, (_, reads) in readme_rules().items() for upstream in reads}
    planned = set()
    for change in (  # between them, every way the graph can branch
        "generate: {filter: confidence}",
        "{generate: {filter: none}, diffusion: {pretrained: /a/pipeline}}",
        "diffusion: {init_from: /a/pipeline}",
        "{diffusion: {conditioning: class}, arms: [baseline, diffusion, diffusion_sample]}",
    ):
        planned |= _snakemake_rule_graph(tmp_path, change)
    assert listed == {(a, b) for a, b in planned if b != "all"}


def _planned_jobs(output: str) -> dict:
    stats = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE) if m[1] != "all"}


@pytest.mark.parametrize("change, expected", rerun_table(), ids=[row[0] for row in rerun_table()])
def test_a_config_change_reruns_exactly_what_depends_on_it(finished_run, tmp_path, change, expected):
    (tmp_path / "change.yaml").write_text(change + "\n")  # snakemake merges it key by key over the others
    result = snakemake(finished_run, "-n", configs=[*CONFIGS, str(tmp_path / "change.yaml")])
    assert result.returncode == 0, result.stderr[-3000:]
    assert _planned_jobs(result.stdout + result.stderr) == expected


CLASSIFIER_RERUNS = {
    "train_judge": 1,
    "train_classifier": 7,
    "score_generated": 5,
    "select_generated": 4,
    "novelty": 1,
    "report": 1,
}


@pytest.mark.parametrize(
    "change, expected",
    [
        ("classifier: {sb_cnn: {dropout: 0.3}}", None),  # the published network does not read it
        ("classifier: {model: published_cnn, normalise: none}", None),  # the defaults, written out
        ("features: {log: false}", None),
        ("classifier: {model: sb_cnn}", CLASSIFIER_RERUNS),
        ("classifier: {normalise: per_band}", CLASSIFIER_RERUNS),
        (
            "features: {log: true}",
            {
                "features": 1,
                "features_generated": 2,
                "features_mel_average": 1,
                "features_round_trip": 1,
                "listen": 1,
                **CLASSIFIER_RERUNS,
            },
        ),
    ],
)
def test_classifier_and_feature_options_rerun_only_when_they_change_what_runs(finished_run, tmp_path, change, expected):
    (tmp_path / "change.yaml").write_text(change + "\n")
    result = snakemake(finished_run, "-n", configs=[*CONFIGS, str(tmp_path / "change.yaml")])
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert ("Nothing to be done" in output) if expected is None else _planned_jobs(output) == expected


def _run_on(workdir, change, cuda_here, *args):
    """`snakemake *args` of the tiny config and `change`, on a machine with or without CUDA."""
    (workdir / "change.yaml").write_text(change + "\n")
    command = snakemake_command(workdir, *args, configs=[*CONFIGS, str(workdir / "change.yaml")])
    pretend = f"import diffaug.probes; diffaug.probes.cuda_available = lambda: {cuda_here}; "
    code = pretend + f"import sys; from snakemake.cli import main; sys.exit(main({command[1:]!r}))"
    environment = without_slurm_controller()
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=environment)


def _planned_gpus(workdir, change, cuda_here):
    """{rule: set of gpu requests} of a dry run, planned on a machine with or without CUDA."""
    result = _run_on(workdir, change, cuda_here, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    return _gpu_requests(result.stdout)


def _gpu_requests(output: str) -> dict[str, set[int]]:
    gpus = {}
    for rule, resources in re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", output, re.M):
        gpu = re.search(r"\bgpu=(\d+)", resources)
        gpus.setdefault(rule, set()).add(int(gpu[1]) if gpu else 0)
    return gpus


GPU_RULES = {
    "diffusion": ["train_diffusion"],
    "generate": ["interpolate", "reconstruct"],
    "classifier": ["train_classifier", "train_judge", "score_generated", "novelty"],
}


@pytest.mark.parametrize(
    "devices, cuda_here",
    [
        ({"diffusion": "auto", "generate": "auto", "classifier": "auto"}, True),
        ({"diffusion": "auto", "generate": "auto", "classifier": "auto"}, False),
        ({"diffusion": "cuda", "generate": "auto", "classifier": "cpu"}, True),
        ({"diffusion": "cpu", "generate": "cuda", "classifier": "cuda"}, True),
    ],
)
def test_jobs_ask_for_a_gpu_exactly_when_they_will_use_one(tmp_path, devices, cuda_here):
    change = "\n".join(f"{section}: {{device: {device}}}" for section, device in devices.items())
    gpus = _planned_gpus(tmp_path, change, cuda_here)
    for section, device in devices.items():
        expected = int(device == "cuda" or (device == "auto" and cuda_here))
        for rule in GPU_RULES[section]:
            assert gpus[rule] == {expected}, (rule, device)
    others = set(gpus) - {rule for rules in GPU_RULES.values() for rule in rules}
    assert others and all(gpus[rule] == {0} for rule in others)


@pytest.mark.parametrize("action", [["-n"], ["--lint"]])
def test_planning_imports_neither_torch_nor_diffusers(tmp_path, action):
    command = snakemake_command(tmp_path, *action)
    heavy = "sorted({'torch', 'diffusers'} & set(sys.modules))"
    report = f"import atexit, sys; atexit.register(lambda: print('heavy:', {heavy}))"
    code = f"{report}; from snakemake.cli import main; sys.exit(main({command[1:]!r}))"
    environment = without_slurm_controller()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=environment)
    assert "heavy: []" in result.stdout, (result.stdout + result.stderr)[-3000:]


def test_a_cuda_device_on_a_machine_without_cuda_is_refused_before_any_work(tmp_path):
    result = _run_on(tmp_path, "classifier: {device: cuda}", False)
    assert result.returncode != 0
    assert "classifier.device: 'cuda' but this machine has no CUDA device" in result.stderr
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr
    assert "Finished jobid" not in result.stdout + result.stderr and not (tmp_path / "results").exists()


def test_a_dry_run_of_a_gpu_study_on_a_machine_without_cuda_plans_it_as_on_one_and_warns(tmp_path):
    result = _run_on(
        tmp_path, "diffusion: {device: cuda}\ngenerate: {device: auto}\nclassifier: {device: cuda}", False, "-n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("warning: config does not fit this machine (a real run here is refused):") == 1
    assert "diffusion.device: 'cuda'" in result.stderr and "classifier.device: 'cuda'" in result.stderr
    assert "generate.device" not in result.stderr
    assert "this dry run plans the jobs as on a machine with CUDA" in result.stderr
    gpus = _gpu_requests(result.stdout)
    assert all(gpus[rule] == {1} for rules in GPU_RULES.values() for rule in rules)  # auto too, as on a GPU machine


def test_init_from_imports_the_pipeline_once_and_fine_tunes_it_per_split(tmp_path, tiny_pipeline):
    (tmp_path / "tune.yaml").write_text(
        f"diffusion: {{init_from: '{tiny_pipeline}'}}\nprotocol: {{test_folds: [1, 2]}}\n"
    )
    result = snakemake(tmp_path, "-n", "-p", configs=[*CONFIGS, str(tmp_path / "tune.yaml")])
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = _planned_jobs(result.stdout + result.stderr)
    assert jobs["import_pretrained"] == 1 and jobs["train_diffusion"] == 2
    planned = re.findall(r"^rule train_diffusion:\n    input: (.*)$", result.stdout + result.stderr, re.M)
    assert all("results/diffusion/pretrained/model" in inputs for inputs in planned) and len(planned) == 2


def test_pinning_a_hub_revision_reruns_the_import(tmp_path, tiny_pipeline):
    (tmp_path / "tune.yaml").write_text(f"diffusion: {{init_from: '{tiny_pipeline}'}}\n")
    (tmp_path / "pin.yaml").write_text("diffusion: {revision: v1.0}\n")
    configs, target = [*CONFIGS, str(tmp_path / "tune.yaml")], "results/diffusion/pretrained/model"
    result = snakemake(tmp_path, target, configs=configs)
    assert result.returncode == 0, result.stderr[-3000:]
    unchanged = snakemake(tmp_path, "-n", target, configs=configs)
    assert "Nothing to be done" in unchanged.stdout + unchanged.stderr
    result = snakemake(tmp_path, "-n", target, configs=[*configs, str(tmp_path / "pin.yaml")])
    assert _planned_jobs(result.stdout + result.stderr) == {"import_pretrained": 1}
    assert "Params have changed" in result.stdout + result.stderr and "'v1.0'" in result.stdout + result.stderr


def test_resources_in_the_config_replace_a_rules_defaults(tmp_path):
    (tmp_path / "sizes.yaml").write_text("resources: {train_classifier: {runtime: 7}, features: {mem_mb: 9000}}\n")
    result = snakemake(tmp_path, "-n", configs=[*CONFIGS, str(tmp_path / "sizes.yaml")])
    assert result.returncode == 0, result.stderr[-3000:]
    planned = dict(re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", result.stdout + result.stderr, re.M))
    assert "runtime=7," in planned["train_classifier"] and "mem_mb=4000," in planned["train_classifier"]
    assert "mem_mb=9000," in planned["features"] and "runtime=120," in planned["features"]
    assert "runtime=240," in planned["train_diffusion"]
