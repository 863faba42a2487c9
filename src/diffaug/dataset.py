"""The UrbanSound8K layout: metadata checks, the manifest of usable clips, and the optional download."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import soundfile as sf

from . import CLASSES

METADATA_COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")
METADATA_FILE = Path("metadata") / "UrbanSound8K.csv"
MANIFEST_COLUMNS = ("id", "path", "fsID", "fold", "classID", "class", "salience", "sample_rate", "channels", "seconds")


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

    Raises DatasetError naming the file and listing the rows with missing audio, unknown
    classes, class ids that disagree with class names, or folds outside 1-10.
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
    ]
    problems = [_row_list(meta[mask], reason) for mask, reason in checks if mask.any()]
    if not problems:
        exists = [
            (root / "audio" / f"fold{f}" / n).is_file() for f, n in zip(fold.astype(int), meta["slice_file_name"])
        ]
        absent = ~pd.Series(exists, index=meta.index)
        if absent.any():
            problems.append(_row_list(meta[absent], "audio file not found"))
    if problems:
        raise DatasetError(f"{path}: unusable rows\n" + "\n".join(problems))
    return meta.astype({"fold": int, "classID": int, "fsID": int, "salience": int})


def build_manifest(root: str | Path) -> pd.DataFrame:
    """One row per clip: checked metadata joined with each file's header (rate, channels, length)."""
    root = Path(root).resolve()
    meta = read_metadata(root)
    paths = [root / "audio" / f"fold{f}" / n for f, n in zip(meta["fold"], meta["slice_file_name"])]
    infos, bad = [], []
    for path in paths:
        try:
            info = sf.info(str(path))
            infos.append((info.samplerate, info.channels, info.frames / info.samplerate))
            if info.frames == 0:
                bad.append(f"  {path}: no samples")
        except Exception as exc:
            infos.append((0, 0, 0.0))
            bad.append(f"  {path}: unreadable audio ({exc})")
    if bad:
        raise DatasetError(f"{root}: unusable audio files\n" + "\n".join(bad))
    manifest = meta.rename(columns={"slice_file_name": "id"})
    manifest["path"] = [str(p) for p in paths]
    manifest[["sample_rate", "channels", "seconds"]] = pd.DataFrame(infos, index=meta.index)
    return manifest[list(MANIFEST_COLUMNS)]


def download_urbansound8k(root: str | Path) -> None:
    """Fetch and check UrbanSound8K with soundata into `root` (needs network access)."""
    import soundata

    dataset = soundata.initialize("urbansound8k", data_home=str(root))
    dataset.download(cleanup=True)
    missing, invalid = dataset.validate()
    if any(missing.values()) or any(invalid.values()):
        raise DatasetError(f"{root}: download incomplete or corrupted (see soundata's validation report)")
