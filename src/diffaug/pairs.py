"""Pairs of same-class clips from different recordings within one judge half: what interpolation,
reconstruction, mel averaging and the round trip draw on, and where each pair's generated clip lies."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import read_table


def count_pairs(clips: pd.DataFrame) -> int:
    """Unordered pairs of clips from different recordings (recording)."""
    n, same = len(clips), clips["recording"].value_counts()
    return n * (n - 1) // 2 - int((same * (same - 1) // 2).sum())


def choose_pairs(clips: pd.DataFrame, count: int, seed) -> list[tuple[str, str]]:
    """`count` distinct unordered pairs of clips from different recordings (recording), seeded. The round
    trip and the reconstruction take a pair's first clip: it is the one that has come first fewer
    times so far (drawn on a tie), so that they repeat fewer clips than a drawn first would."""
    ids, recordings = clips["id"].to_numpy(), clips["recording"].to_numpy()
    order = np.argsort(ids, kind="stable")
    ids, recordings = ids[order], recordings[order]
    n = len(ids)
    available = count_pairs(clips)
    if count > available:
        raise ValueError(f"{count} pairs asked, but only {available} pairs of clips from different recordings exist")
    rng = np.random.default_rng(seed)
    picked: dict[tuple[int, int], None] = {}
    if count > available // 2:  # dense: enumerate and sample
        every = [(i, j) for i, j in itertools.combinations(range(n), 2) if recordings[i] != recordings[j]]
        picks = [every[k] for k in rng.choice(len(every), size=count, replace=False)]
    else:
        while len(picked) < count:
            i, j = sorted(rng.choice(n, size=2, replace=False).tolist())
            if recordings[i] != recordings[j]:
                picked.setdefault((i, j))
        picks = list(picked)
    flips, firsts, pairs = rng.random(len(picks)) < 0.5, np.zeros(n, int), []
    for (i, j), flip in zip(picks, flips):
        if firsts[j] < firsts[i] or (firsts[j] == firsts[i] and flip):
            i, j = j, i
        firsts[i] += 1
        pairs.append((ids[i], ids[j]))
    return pairs


PAIR_COLUMNS = ("pair", "class", "source_a", "source_b", "recording_a", "recording_b", "half")


def generated_set_seed(seed: int, generated_set: int) -> int:
    """The seed of one generated set: `seed` itself for the first, an independent stream for the others."""
    return seed if generated_set == 0 else int(np.random.SeedSequence([seed, generated_set]).generate_state(1)[0])


def pair_id(class_name: str, index: int) -> str:
    """The id of a class's `index`-th pair, which names its generated clip too: <class>-<index>."""
    return f"{class_name}-{index:05d}"


def pairs_per_half(available: tuple[int, int], pairs_per_class: int) -> tuple[int, int]:
    """How many of a class's `pairs_per_class` pairs each judge half gives: as even as the pairs
    `available` in each half allow (the first half takes the odd one)."""
    first = min(available[0], max(-(-pairs_per_class // 2), pairs_per_class - available[1]))
    if first + available[1] < pairs_per_class:
        raise ValueError(
            f"{pairs_per_class} pairs asked, but only {sum(available)} pairs of clips from different recordings "
            f"within a judge's half exist ({available[0]} and {available[1]})"
        )
    return first, pairs_per_class - first


def pairs_table(
    train: pd.DataFrame, pairs_per_class: int, seed: int, halves: list[list[str]] | None = None
) -> pd.DataFrame:
    """`pairs_per_class` pairs per class of the training clips, each named by `pair_id`: the one list that
    interpolation, mel averaging, the round trip and the reconstruction all draw on. Both clips of a
    pair lie in one of the split's two judge `halves` (its `half` column), so that the judge trained
    on the other half heard neither; without halves, every clip counts as half 0."""
    half_of = {clip: half for half, clips in enumerate(halves) for clip in clips} if halves else {}
    train = train.assign(half=train["id"].map(half_of).fillna(0).astype(int))
    recording, rows = train.set_index("id")["recording"], []
    for class_name, clips in train.groupby("class", sort=True):
        parts = [clips[clips["half"] == half] for half in (0, 1)]
        counts = pairs_per_half(tuple(count_pairs(part) for part in parts), pairs_per_class)
        drawn = [(half, pair) for half in (0, 1) for pair in choose_pairs(parts[half], counts[half], [seed, half])]
        rows += [
            (pair_id(class_name, index), class_name, a, b, recording[a], recording[b], half)
            for index, (half, (a, b)) in enumerate(drawn)
        ]
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))


def generated_set_of_pairs(pairs_csv: str | Path) -> tuple[str, str]:
    """(split, generated set) of a pairs table at results/pairs/{split}/set{k}.csv."""
    path = Path(pairs_csv)
    return path.parent.name, path.stem.removeprefix("set")


def pair_clips(manifest: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The rows of the `manifest` that the `pairs` draw on (either clip), in the manifest's order."""
    return manifest[manifest["id"].isin(set(pairs["source_a"]) | set(pairs["source_b"]))]


def pair_wavs(pairs: list[dict], class_dirs: list[str], rule: str) -> dict[str, Path]:
    """{pair: its WAV, named by the pair} in the class folders that `rule` wrote (none without folders);
    FileNotFoundError naming the first missing one."""
    folders = {Path(folder).name: Path(folder) for folder in class_dirs}
    wavs = {pair["pair"]: folders[pair["class"]] / f"{pair['pair']}.wav" for pair in pairs if folders}
    if missing := [wav for wav in wavs.values() if not wav.is_file()]:
        raise FileNotFoundError(f"{missing[0]}: the clip of pair {missing[0].stem} is missing; rerun {rule}")
    return wavs


def generated_clips(class_dirs: list[str], classes: Sequence[str]) -> tuple[list[Path], list[int], list[str]]:
    """(paths, class indices, names) of the clips written into `class_dirs`, as each folder's pairs.csv
    lists them: a clip is named by its pair."""
    paths, labels, ids = [], [], []
    for folder in class_dirs:
        written = read_table(Path(folder) / "pairs.csv")
        paths += [Path(folder) / f for f in written["file"]]
        labels += [classes.index(c) for c in written["class"]]
        ids += [Path(f).stem for f in written["file"]]
    return paths, labels, ids
