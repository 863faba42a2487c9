"""The manifest of usable clips of any layout, the class list it records, and UrbanSound8K's download."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .layouts import Catalogue, DatasetError, is_audio_name, printable, read_dataset, recording_ids

MANIFEST_COLUMNS = ("id", "path", "recording", "fold", "label", "class", "sample_rate", "channels", "seconds")
REJECTED_COLUMNS = ("file", "fold", "class", "reason")

__all__ = [
    "DatasetError",
    "build_manifest",
    "is_audio_name",
    "read_classes",
    "read_manifest",
    "read_table",
    "write_classes",
]

TEXT_COLUMNS = ("id", "path", "file", "class", "predicted", "pair", "clip", "source_a", "source_b")
"""Columns of the workflow's tables that hold names: read as text, whatever they look like (a class
named 0 or None stays that name)."""

log = logging.getLogger(__name__)


def build_manifest(
    root: str | Path, on_bad_file: str = "error", max_seconds: float = 4.0, layout: dict | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(manifest, rejected) of the dataset at `root` in the layout that `layout` (the config's dataset
    section; UrbanSound8K's without one) names: one manifest row per usable clip, with its label,
    rate, channels and length.

    Every listed file is read whole. Missing, unreadable, empty, too short, too long, silent or
    non-finite audio, a folder or FIFO in a clip's place (never opened), and audio files on disk that
    the layout does not take (also those in other folders, or named in bytes that are not UTF-8),
    are rejected, named as printable UTF-8 text: with `on_bad_file="error"` one DatasetError lists
    them all, with "skip" they are returned apart.
    Hidden files (.DS_Store, ._name) and files that are not audio by their suffix are ignored and
    logged. A class left without usable clips keeps its label (and a warning).
    """
    catalogue = read_dataset(layout or {"layout": "urbansound8k"}, root)
    return checked_manifest(catalogue, Path(root).resolve(), on_bad_file, max_seconds)


def checked_manifest(
    catalogue: Catalogue, root: Path, on_bad_file: str, max_seconds: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """build_manifest's audio checks on a catalogue of clips under `root`."""
    from .audio import AudioError, file_problem, inspect_audio  # torch: not needed to plan a run

    clips = catalogue.labelled()
    infos, rejected = {}, []
    for index, path in tqdm(list(zip(clips.index, clips["path"])), desc="check audio", mininterval=2):
        try:
            if problem := file_problem(path):
                raise AudioError(path, problem)
            infos[index] = inspect_audio(path, max_seconds)
        except AudioError as error:
            rejected.append((_relative(path, root), clips.at[index, "fold"], clips.at[index, "class"], error.reason))
    if catalogue.ignored:
        ignored = catalogue.ignored
        names = ", ".join(_relative(p, root) for p in ignored[:10]) + (", ..." * (len(ignored) > 10))
        log.info("ignored %d hidden or non-audio file(s) under %s: %s", len(ignored), root, names)
    rejected += [(_relative(path, root), None, None, reason) for path, reason in catalogue.unlisted]
    rejected = pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS))
    if len(rejected) and on_bad_file == "error":
        lines = [f"  {r.file}: {r.reason}" for r in rejected.itertuples()]
        raise DatasetError(
            f"{root}: {len(rejected)} unusable audio file(s)\n" + "\n".join(lines) + "\n"
            "(set dataset.on_bad_file: skip to leave them out and list them in results/data/rejected.csv)"
        )
    usable = clips.loc[list(infos)]
    if empty := [name for name in catalogue.classes if name not in set(usable["class"])]:
        log.warning("no usable clip of class(es) %s: they keep their label, but nothing learns them", ", ".join(empty))
    header = ["sample_rate", "channels", "seconds"]
    usable[header] = pd.DataFrame(list(infos.values()), index=usable.index, columns=header)
    return usable[list(MANIFEST_COLUMNS)].reset_index(drop=True), rejected


def _relative(path, root: Path) -> str:
    """A file's path below `root` (or whole, if outside), printable as UTF-8 whatever its bytes."""
    path = Path(path)
    return printable(path.relative_to(root).as_posix() if path.is_relative_to(root) else path)


def read_table(path: str | Path) -> pd.DataFrame:
    """A table the workflow wrote (manifest, pairs, scores), its names read as text."""
    return pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, str), keep_default_na=False)


def read_manifest(path: str | Path) -> pd.DataFrame:
    """The manifest CSV as written, its recordings typed as the catalogue typed them."""
    table = read_table(path)
    return table.assign(recording=recording_ids(table["recording"]))


def write_classes(path: str | Path, classes: tuple[str, ...]) -> None:
    """The dataset's class list beside its manifest: one name per line, in label order."""
    from .files import write_text

    write_text(path, "".join(f"{name}\n" for name in classes))


def read_classes(path: str | Path) -> tuple[str, ...]:
    """The class names that write_classes wrote, in label order."""
    classes = tuple(Path(path).read_text().splitlines())
    if not classes or len(set(classes)) < len(classes):
        raise DatasetError(f"{path}: not a list of distinct class names; rerun the manifest rule")
    return classes


def download_urbansound8k(root: str | Path) -> None:
    """Fetch and check UrbanSound8K with soundata into `root` (needs network access)."""
    import soundata

    dataset = soundata.initialize("urbansound8k", data_home=str(root))
    dataset.download(cleanup=True)
    missing, invalid = dataset.validate(verbose=False)
    problems = [name for name, found in (("missing", missing), ("corrupted", invalid)) if _any_listed(found)]
    if problems:
        raise DatasetError(f"{root}: UrbanSound8K download has {' and '.join(problems)} files; run it again")


def _any_listed(found) -> bool:
    """soundata reports files per kind in (nested) dicts or lists."""
    return any(_any_listed(v) for v in found.values()) if isinstance(found, dict) else bool(found)
