"""The UrbanSound8K layout: metadata checks, the manifest of usable clips, and the optional download."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from . import CLASSES

METADATA_COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")
METADATA_FILE = Path("metadata") / "UrbanSound8K.csv"
MANIFEST_COLUMNS = ("id", "path", "fsID", "fold", "classID", "class", "salience", "sample_rate", "channels", "seconds")
REJECTED_COLUMNS = ("file", "fold", "class", "reason")
AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".w64", ".caf"}
)
"""Suffixes of audio files: an unlisted file with one of them is an error, other files are ignored."""

log = logging.getLogger(__name__)


def slice_file_name(fs_id: int, class_id: int, slice_index: int, occurrence: int = 0) -> str:
    """UrbanSound8K's name of a clip, the id it goes by: <fsID>-<classID>-<occurrence>-<slice>.wav."""
    return f"{fs_id}-{class_id}-{occurrence}-{slice_index}.wav"


class DatasetError(ValueError):
    """A dataset whose layout or metadata cannot be used; the message lists every offending row."""


def _row_list(rows: pd.DataFrame, reason: str, limit: int = 20) -> str:
    lines = [
        f"  row {i + 2}: {r['slice_file_name']} (fold {r['fold']}, class {r['class']}): {reason}"
        for i, r in zip(rows.index, rows.to_dict("records"))
    ]
    more = [f"  ... and {len(lines) - limit} more"] if len(lines) > limit else []
    return "\n".join(lines[:limit] + more)


def read_metadata(root: str | Path) -> pd.DataFrame:
    """Read `metadata/UrbanSound8K.csv` under `root` and check every row against the layout.

    Raises DatasetError naming the file and listing the rows with unknown classes, class ids that
    disagree with class names, folds outside 1-10 or file names listed twice, then the recordings
    (fsID) found in more than one fold, which would leak between training and test. The audio files
    themselves are checked by build_manifest.
    """
    root = Path(root)
    path = root / METADATA_FILE
    if not path.is_file():
        raise DatasetError(f"{path}: metadata file not found (expected the UrbanSound8K layout under {root})")
    try:
        meta = pd.read_csv(path)
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable CSV ({exc})") from None
    missing = [c for c in METADATA_COLUMNS if c not in meta.columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(METADATA_COLUMNS)}")
    fold = pd.to_numeric(meta["fold"], errors="coerce")
    class_id = pd.to_numeric(meta["classID"], errors="coerce")
    known = meta["class"].isin(CLASSES)
    expected_id = meta["class"].map({c: i for i, c in enumerate(CLASSES)})
    checks = [
        (~known, f"unknown class (expected one of {', '.join(CLASSES)})"),
        (known & (class_id != expected_id), "classID does not match the class name"),
        (~fold.isin(range(1, 11)), "fold outside 1-10"),
        (meta["slice_file_name"].duplicated(keep=False), "file name listed more than once"),
        (pd.to_numeric(meta["fsID"], errors="coerce").isna(), "fsID is not a number"),
    ]
    problems = [_row_list(meta[mask], reason) for mask, reason in checks if mask.any()]
    if problems:
        raise DatasetError(f"{path}: unusable rows\n" + "\n".join(problems))
    meta = meta.astype({"fold": int, "classID": int, "fsID": int})
    clips_per_fold = meta.groupby(["fsID", "fold"]).size()
    spread = clips_per_fold[clips_per_fold.groupby(level="fsID").transform("size") > 1]
    if len(spread):
        count = spread.index.get_level_values("fsID").nunique()
        raise DatasetError(
            f"{path}: {count} recording(s) in more than one fold, which would leak between training and test "
            "(each fsID must stay in one fold)\n" + _recording_list(spread)
        )
    return meta


def _recording_list(clips_per_fold: pd.Series, limit: int = 20) -> str:
    lines = [
        f"  fsID {fs_id}: folds " + ", ".join(f"{fold} ({n} clip{'s' * (n > 1)})" for (_, fold), n in counts.items())
        for fs_id, counts in clips_per_fold.groupby(level="fsID")
    ]
    more = [f"  ... and {len(lines) - limit} more"] if len(lines) > limit else []
    return "\n".join(lines[:limit] + more)


def build_manifest(
    root: str | Path, on_bad_file: str = "error", max_seconds: float = 4.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(manifest, rejected): one manifest row per usable clip, with its rate, channels and length.

    Every listed file is read whole. Missing, unreadable, empty, too short, too long, silent or
    non-finite audio, and audio files under audio/fold*/ that the metadata does not list, are
    rejected: with `on_bad_file="error"` one DatasetError lists them all, with "skip" they are
    returned apart. Hidden files (.DS_Store, ._name) and files that are not audio by their suffix
    are ignored and logged.
    """
    from .audio import AudioError, inspect_audio  # torch: not needed to plan a run

    root = Path(root).resolve()
    meta = read_metadata(root)
    paths = [root / "audio" / f"fold{f}" / n for f, n in zip(meta["fold"], meta["slice_file_name"])]
    infos, rejected = {}, []
    for index, path in tqdm(list(zip(meta.index, paths)), desc="check audio", mininterval=2):
        try:
            if not path.is_file():
                raise AudioError(path, "audio file not found")
            infos[index] = inspect_audio(path, max_seconds)
        except AudioError as error:
            row = meta.loc[index]
            rejected.append((row["slice_file_name"], row["fold"], row["class"], error.reason))
    listed = set(paths)
    unlisted = sorted(p for p in (root / "audio").glob("fold*/*") if p.is_file() and p not in listed)
    ignored = [p for p in unlisted if not is_audio_name(p.name)]
    if ignored:
        names = ", ".join(str(p.relative_to(root)) for p in ignored[:10]) + (", ..." if len(ignored) > 10 else "")
        log.info("ignored %d hidden or non-audio file(s) under %s: %s", len(ignored), root / "audio", names)
    for extra in (p for p in unlisted if is_audio_name(p.name)):
        fold = extra.parent.name.removeprefix("fold")
        rejected.append((extra.name, int(fold) if fold.isdigit() else None, None, "on disk but not in the metadata"))
    rejected = pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS))
    if len(rejected) and on_bad_file == "error":
        lines = [f"  audio/fold{r.fold}/{r.file}: {r.reason}" for r in rejected.itertuples()]
        raise DatasetError(
            f"{root}: {len(rejected)} unusable audio file(s)\n" + "\n".join(lines) + "\n"
            "(set dataset.on_bad_file: skip to leave them out and list them in results/data/rejected.csv)"
        )
    usable = meta.loc[list(infos)]
    manifest = usable.rename(columns={"slice_file_name": "id"})
    manifest["path"] = [str(paths[i]) for i in usable.index]
    header = ["sample_rate", "channels", "seconds"]
    manifest[header] = pd.DataFrame(list(infos.values()), index=usable.index, columns=header)
    return manifest[list(MANIFEST_COLUMNS)].reset_index(drop=True), rejected


def is_audio_name(name: str) -> bool:
    """Whether a file name under audio/ names an audio clip: not hidden, with an audio suffix."""
    return not name.startswith(".") and Path(name).suffix.lower() in AUDIO_SUFFIXES


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
