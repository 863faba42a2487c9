"""Dataset layouts: UrbanSound8K, ESC-50 and a folder per class, each read into one catalogue of clips.

A catalogue names every clip (id, file, recording, fold, class) and the class list in label order,
checked before any audio is decoded; build_manifest then checks the audio itself.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

URBANSOUND8K_CLASSES = (
    "air_conditioner",
    "car_horn",
    "children_playing",
    "dog_bark",
    "drilling",
    "engine_idling",
    "gun_shot",
    "jackhammer",
    "siren",
    "street_music",
)
"""UrbanSound8K's class names in classID order: its layout check."""
URBANSOUND8K_METADATA = Path("metadata") / "UrbanSound8K.csv"
URBANSOUND8K_COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")
ESC50_METADATA = Path("meta") / "esc50.csv"
ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
FOLDERS_COLUMNS = ("path", "label", "fold", "group")
AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".w64", ".caf"}
)
"""Suffixes of audio files: an unlisted file with one of them is an error, other files are ignored;
metadata names only files with one of them."""
CATALOGUE_COLUMNS = ("id", "path", "recording", "fold", "class")


class DatasetError(ValueError):
    """A dataset whose layout or metadata cannot be used; the message lists every offending row."""


@dataclass
class Catalogue:
    """The clips a dataset's layout names, before their audio is read."""

    clips: pd.DataFrame
    """id (unique), path (absolute), recording, fold, class; one row per listed clip."""
    classes: tuple[str, ...]
    """Class names in label order."""
    unlisted: list[tuple[Path, str]] = field(default_factory=list)
    """Audio files on disk that the layout does not take (not listed, out of place, or named in bytes
    that are not UTF-8), each with the reason."""
    ignored: list[Path] = field(default_factory=list)
    """Hidden and non-audio files, left alone."""
    notes: list[str] = field(default_factory=list)
    """What the layout decided where the data is silent (folds dealt, recordings by file)."""

    def labelled(self) -> pd.DataFrame:
        """The clips with their `label`: the class's place in `classes`."""
        label = self.clips["class"].map({name: i for i, name in enumerate(self.classes)})
        return self.clips.assign(label=label.astype(int))


def is_audio_name(name: str) -> bool:
    """Whether a file name names an audio clip: not hidden, with an audio suffix."""
    return not name.startswith(".") and Path(name).suffix.lower() in AUDIO_SUFFIXES


def printable(path: str | Path) -> str:
    """A path as text that any UTF-8 file or terminal takes: bytes of a name that are not UTF-8
    (read by Python as lone surrogates) are written as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def recording_ids(values: pd.Series) -> pd.Series:
    """Recording ids as one type, whatever read them: whole numbers as integers, else text, so that a
    catalogue and the manifest written from it group and order recordings alike."""
    text = values.astype(str).str.strip()
    return text.astype("int64") if text.str.fullmatch(r"0|-?[1-9]\d{0,17}").all() else text


def _read_table(path: Path, columns: tuple[str, ...], layout: str, required: tuple[str, ...] = ()) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetError(f"{path}: metadata file not found (expected the {layout} layout)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable CSV ({exc})") from None
    table = table.fillna("")  # the cells of a row with too few fields
    missing = [c for c in required or columns if c not in table.columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}")
    return table


def _whole(values: pd.Series, minimum: int) -> pd.Series:
    """Whole numbers of at least `minimum` written in ASCII digits without leading zeros; NaN for anything
    else: 12.5, and also 12.0, 1e1, +12 or 012, which one reader takes for 12 and another (recording_ids)
    for a name of its own."""
    text = values.str.strip()
    number = pd.to_numeric(text.where(text.str.fullmatch(r"0|[1-9][0-9]{0,17}")), errors="coerce")
    return number.where(number >= minimum)


def _refuse_rows(
    path: Path, table: pd.DataFrame, name: str, checks: list[tuple[pd.Series, str]], required: tuple[str, ...] = ()
) -> None:
    """DatasetError listing, per failed check, up to 20 rows by their line in `path` and `name` column.
    A row with an empty cell in a `required` column is listed for that, not again for what follows."""
    blank = {column: table[column].str.strip() == "" for column in required}
    any_blank = pd.concat(list(blank.values()), axis=1).any(axis=1) if blank else False
    checks = [(mask, f"{column} is empty") for column, mask in blank.items()] + [
        (mask & ~any_blank, reason) for mask, reason in checks
    ]
    problems = []
    for mask, reason in checks:
        rows = table[mask]
        lines = [f"  row {i + 2}: {n}: {reason}" for i, n in zip(rows.index, rows[name])]
        problems += lines[:20] + ([f"  ... and {len(lines) - 20} more"] if len(lines) > 20 else [])
    if problems:
        raise DatasetError(f"{path}: unusable rows\n" + "\n".join(problems))


def _refuse_spread_recordings(path: Path, clips: pd.DataFrame) -> None:
    """DatasetError for recordings found in more than one fold, which would leak between training and test."""
    clips_in = clips.groupby(["recording", "fold"]).size()
    folds = clips_in.groupby(level="recording").size()
    spread = folds[folds > 1]
    if len(spread):
        lines = [
            f"  recording {r}: folds " + ", ".join(f"{k} ({n} clip{'s' * (n > 1)})" for k, n in clips_in[r].items())
            for r in spread.index
        ]
        more = [f"  ... and {len(lines) - 20} more"] if len(lines) > 20 else []
        raise DatasetError(
            f"{path}: {len(spread)} recording(s) in more than one fold, which would leak between training and "
            "test (each recording must stay in one fold)\n" + "\n".join(lines[:20] + more)
        )


def _plain_name(names: pd.Series) -> pd.Series:
    """Whether each name is a file name inside its folder: no path separator, not hidden, not empty, no
    control characters (a NUL byte ends a name for the system)."""
    return (names.str.strip() != "") & ~names.str.contains(r"[/\\\x00-\x1f]") & ~names.str.startswith(".")


def _audio_names(names: pd.Series) -> pd.Series:
    """Whether each name (or path) ends in an audio file's name: an audio suffix, not hidden."""
    return names.map(lambda name: is_audio_name(posixpath.basename(name)))


def _usable_class(names: pd.Series) -> pd.Series:
    """Whether each class name can name its results folders and a workflow wildcard's value."""
    return _plain_name(names) & ~names.str.contains(r"[{}]")


def _files_on_disk(folder: Path) -> tuple[list[Path], list[Path], list[tuple[Path, str]]]:
    """(audio files, hidden or non-audio files, audio files whose path below `folder` is not UTF-8 with
    that reason) under `folder`: every entry but a folder (a FIFO named .wav is listed too, to be
    reported, never opened), in sorted order. Links to folders elsewhere are followed, each folder walked
    once; a link to a folder inside `folder` is not (its files are found under their own path, never
    under another class's); hidden folders are skipped."""
    found, walked, real_folder = [], set(), os.path.realpath(folder)
    for top, folders, files in os.walk(folder, followlinks=True):
        if (real := os.path.realpath(top)) in walked:  # a second link to a folder outside
            folders.clear()
            continue
        walked.add(real)
        folders[:] = [
            name for name in folders if not (name.startswith(".") or _link_within(Path(top, name), real_folder))
        ]
        found += [Path(top, name) for name in files]
    found.sort()
    audio = [p for p in found if is_audio_name(p.name)]
    misnamed = {p for p in audio if printable(p.relative_to(folder)) != str(p.relative_to(folder))}
    reason = "file name is not valid UTF-8 (the manifest is UTF-8 text); rename it"
    return (
        [p for p in audio if p not in misnamed],
        [p for p in found if not is_audio_name(p.name)],
        [(p, reason) for p in sorted(misnamed)],
    )


def _link_within(path: Path, real_folder: str) -> bool:
    """Whether `path` is a symbolic link to somewhere inside `real_folder` (a real path)."""
    return path.is_symlink() and os.path.commonpath([os.path.realpath(path), real_folder]) == real_folder


def _unlisted(audio: list[Path], listed: set[str], folder: Path, place: str, pattern: str) -> list[tuple[Path, str]]:
    """The `audio` files whose path is not `listed`, each with its reason: not in the metadata, and
    also out of `place`, where the layout keeps its clips, unless their path in `folder` fits `pattern`."""
    reason = "on disk but not in the metadata"
    return [
        (p, reason if re.fullmatch(pattern, p.relative_to(folder).as_posix()) else f"{reason}, nor in {place}")
        for p in audio
        if str(p) not in listed
    ]


def slice_file_name(fs_id: int, class_id: int, slice_index: int, occurrence: int = 0) -> str:
    """UrbanSound8K's name of a clip, the id it goes by: <fsID>-<classID>-<occurrence>-<slice>.wav."""
    return f"{fs_id}-{class_id}-{occurrence}-{slice_index}.wav"


def urbansound8k_catalogue(meta: pd.DataFrame, root: Path, path: Path) -> Catalogue:
    """Check UrbanSound8K metadata rows (read as text from `path`) against the layout: the ten
    classes, classID agreeing with the class name, folds 1-10, file names listed once."""
    fold, class_id = _whole(meta["fold"], 1), _whole(meta["classID"], 0)
    name = meta["slice_file_name"]
    known = meta["class"].isin(URBANSOUND8K_CLASSES)
    expected_id = meta["class"].map({c: i for i, c in enumerate(URBANSOUND8K_CLASSES)})
    _refuse_rows(
        path,
        meta.assign(name=meta["slice_file_name"] + " (fold " + meta["fold"] + ", class " + meta["class"] + ")"),
        "name",
        [
            (~known, f"unknown class (expected one of {', '.join(URBANSOUND8K_CLASSES)})"),
            (class_id.isna(), "classID is not a whole number from 0 (digits only, no leading zeros)"),
            (known & class_id.notna() & (class_id != expected_id), "classID does not match the class name"),
            (~fold.isin(range(1, 11)), "fold outside 1-10 (whole numbers, in digits only)"),
            (name.duplicated(keep=False), "file name listed more than once"),
            (~_plain_name(name), "not a plain file name (a name in audio/fold<k>/, no path)"),
            (_plain_name(name) & ~_audio_names(name), "not an audio file's name (such as <name>.wav)"),
            (_whole(meta["fsID"], 0).isna(), "fsID is not a whole number (digits only, no leading zeros)"),
        ],
        required=("slice_file_name", "fsID", "fold", "classID", "class"),
    )
    clips = pd.DataFrame(
        {
            "id": meta["slice_file_name"],
            "path": [str(root / "audio" / f"fold{f}" / n) for f, n in zip(fold.astype(int), meta["slice_file_name"])],
            "recording": recording_ids(meta["fsID"]),
            "fold": fold.astype(int),
            "class": meta["class"],
        }
    )
    _refuse_spread_recordings(path, clips)
    audio, ignored, unlisted = _files_on_disk(root / "audio")
    place, in_fold = "a fold folder itself (audio/fold<k>/<name>)", r"fold([1-9]|10)/[^/]+"
    unlisted += _unlisted(audio, set(clips["path"]), root / "audio", place, in_fold)
    return Catalogue(clips, URBANSOUND8K_CLASSES, unlisted, ignored)


def read_urbansound8k(root: str | Path) -> Catalogue:
    """`metadata/UrbanSound8K.csv` and `audio/fold<k>/` under `root`."""
    root = Path(root).resolve()
    path = root / URBANSOUND8K_METADATA
    meta = _read_table(path, URBANSOUND8K_COLUMNS, "UrbanSound8K")
    return urbansound8k_catalogue(meta, root, path)


def read_esc50(root: str | Path, esc10: bool = False) -> Catalogue:
    """`meta/esc50.csv` and `audio/*.wav` under `root`; the recording is `src_file`, the label `target`
    (classes in its order); with `esc10`, only the rows marked esc10 (ESC-10's ten classes)."""
    root = Path(root).resolve()
    path = root / ESC50_METADATA
    meta = _read_table(path, ESC50_COLUMNS, "ESC-50")
    fold, target, name = _whole(meta["fold"], 1), _whole(meta["target"], 0), meta["filename"]
    flag = meta["esc10"].str.strip().str.lower()
    named = meta.assign(target=target)[target.notna() & (meta["category"].str.strip() != "")]
    named = named.drop_duplicates(["target", "category"])  # rows that name a class, each pair once
    spread_targets = set(named.loc[named["target"].duplicated(), "target"])
    spread_categories = set(named.loc[named["category"].duplicated(), "category"])
    _refuse_rows(
        path,
        meta,
        "filename",
        [
            (fold.isna(), "fold is not a whole number from 1 (digits only, no leading zeros)"),
            (target.isna(), "target is not a whole number from 0 (digits only, no leading zeros)"),
            (~flag.isin(["true", "false"]), "esc10 is neither True nor False"),
            (name.duplicated(keep=False), "file name listed more than once"),
            (~_plain_name(name), "not a plain file name (a name in audio/, no path)"),
            (_plain_name(name) & ~_audio_names(name), "not an audio file's name (such as <name>.wav)"),
            (
                ~_usable_class(meta["category"]),
                "a category name that cannot name a folder (/, \\, { or }, or a leading dot)",
            ),
            (target.isin(spread_targets), "target shared by more than one category"),
            (meta["category"].isin(spread_categories), "category with more than one target"),
        ],
        required=ESC50_COLUMNS,
    )
    kept = meta[flag == "true"] if esc10 else meta
    classes = tuple(kept.assign(target=target).drop_duplicates("category").sort_values("target")["category"])
    clips = pd.DataFrame(
        {
            "id": kept["filename"],
            "path": [str(root / "audio" / name) for name in kept["filename"]],
            "recording": recording_ids(kept["src_file"]),
            "fold": fold[kept.index].astype(int),
            "class": kept["category"],
        }
    )
    _refuse_spread_recordings(path, clips)
    audio, ignored, unlisted = _files_on_disk(root / "audio")
    listed = {str(root / "audio" / name) for name in meta["filename"]}  # every row, also those ESC-10 leaves out
    unlisted += _unlisted(audio, listed, root / "audio", "audio/ itself (audio/<name>)", r"[^/]+")
    return Catalogue(clips.reset_index(drop=True), classes, unlisted, ignored)


def read_folders(root: str | Path, metadata: str | None = None, folds: int = 5) -> Catalogue:
    """A folder per class under `root` (`<class>/**/<clip>`, classes in sorted order), optionally with
    a CSV (`metadata`, relative to root) of `path` (relative to root) and any of `label` (must match
    the folder), `fold` and `group` (the recording). Without groups each file is its own recording;
    without folds, recordings are dealt into `folds` folds, class by class."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found (expected a folder per class)")
    audio, ignored, unlisted = _files_on_disk(root)
    in_class = [p for p in audio if len(p.relative_to(root).parts) > 1]
    unlisted += [(p, "not in a class folder") for p in audio if len(p.relative_to(root).parts) == 1]
    names = pd.Series([p.relative_to(root).as_posix() for p in in_class], dtype=str)
    table, table_path, left_out = _folders_table(root, metadata, names)
    unlisted += left_out
    folder = table["path"].str.split("/").str[0]
    fold, given = _whole(table["fold"], 1), table["fold"].str.strip() != ""
    _refuse_folder_rows(table_path, table, folder, fold, given)
    clips, notes = _folder_clips(root, table, folder, fold, given, folds)
    _refuse_spread_recordings(table_path, clips)
    if clips.empty:
        raise DatasetError(f"{root}: no audio files in class folders (expected <root>/<class>/<clip>.wav)")
    return Catalogue(clips, tuple(sorted(set(clips["class"]))), unlisted, ignored, notes)


def _folders_table(root: Path, metadata: str | None, names: pd.Series) -> tuple[pd.DataFrame, Path, list]:
    """(the table of a folders dataset, columns FOLDERS_COLUMNS; the file it comes from; the files on
    disk that it leaves out): the audio files in class folders (`names`), or the `metadata` CSV."""
    if metadata is None:
        return pd.DataFrame({"path": names, "label": "", "fold": "", "group": ""}), root, []
    table_path = root / metadata
    table = _read_table(table_path, FOLDERS_COLUMNS, "folders", required=("path",))
    table = table.reindex(columns=list(FOLDERS_COLUMNS), fill_value="")
    table["path"] = table["path"].str.replace("\\", "/").map(lambda p: posixpath.normpath(p) if p else p)
    listed = set(table["path"])
    return table, table_path, [(root / n, "on disk but not in the metadata") for n in names if n not in listed]


def _refuse_folder_rows(table_path: Path, table: pd.DataFrame, folder: pd.Series, fold: pd.Series, given: pd.Series):
    """Refuse the rows of a folders table (`folder`: each path's class folder; `fold`: its whole fold
    number, where `given`) that name no audio file inside a class folder, or a bad label or fold."""
    parts = table["path"].str.split("/")
    inside = (parts.str.len() > 1) & ~parts.apply(lambda p: any(x in ("", ".", "..") or x.startswith(".") for x in p))
    inside &= ~table["path"].str.contains(r"[\x00-\x1f]")  # control characters: a NUL byte ends a name
    _refuse_rows(
        table_path,
        table,
        "path",
        [
            (~inside, "not a path inside a class folder, relative to the dataset's folder"),
            (inside & ~_audio_names(table["path"]), "not an audio file's name (such as <class>/<name>.wav)"),
            (inside & (table["label"] != "") & (table["label"] != folder), "label differs from its class folder"),
            (inside & ~_usable_class(folder), "a class folder whose name cannot name results ({ or })"),
            (given & fold.isna(), "fold is not a whole number from 1 (digits only, no leading zeros)"),
            (given.any() & ~given, "no fold, while other rows have one"),
            (table["path"].duplicated(keep=False), "listed more than once"),
        ],
        required=("path",),
    )


def _folder_clips(
    root: Path, table: pd.DataFrame, folder: pd.Series, fold: pd.Series, given: pd.Series, folds: int
) -> tuple[pd.DataFrame, list[str]]:
    """(the catalogue's clips, notes on what was filled in) of a checked folders table: a file without
    a group is its own recording, and without any fold `given`, recordings are dealt into `folds`."""
    clips = pd.DataFrame(
        {
            "id": table["path"],
            "path": [str(root / p) for p in table["path"]],
            "recording": recording_ids(table["group"].where(table["group"].str.strip() != "", table["path"])),
            "fold": fold,
            "class": folder,
        }
    )
    notes = []
    if not (table["group"].str.strip() != "").any():
        notes.append("no recordings (group) given: each file counts as its own recording")
    if not given.any():
        clips["fold"] = dealt_folds(clips, folds)
        notes.append(f"no folds given: recordings dealt into {folds} folds, class by class (dataset.folds)")
    clips["fold"] = clips["fold"].astype(int)
    return clips, notes


def dealt_folds(clips: pd.DataFrame, folds: int) -> pd.Series:
    """Each clip's fold when the data gives none: every class's recordings, in an order fixed by their
    names' checksums (the same files give the same folds), dealt round the folds, so that each fold
    holds a share of every class with enough recordings."""
    majority = clips.groupby("recording")["class"].agg(lambda s: s.mode().iloc[0])
    fold_of = {}
    for _, recordings in majority.groupby(majority):
        ordered = sorted(recordings.index, key=lambda r: (zlib.crc32(str(r).encode()), str(r)))
        fold_of |= {recording: 1 + k % folds for k, recording in enumerate(ordered)}
    return clips["recording"].map(fold_of)


def read_dataset(dataset: dict, root: str | Path) -> Catalogue:
    """The catalogue of the dataset that a config's `dataset` section names, read at `root`."""
    layout = dataset["layout"]
    if layout in ("urbansound8k", "synthetic"):  # the synthetic dataset is written in UrbanSound8K's layout
        catalogue = read_urbansound8k(root)
    elif layout == "esc50":
        catalogue = read_esc50(root, dataset.get("esc10", False))
    elif layout == "folders":
        catalogue = read_folders(root, dataset.get("metadata"), dataset.get("folds", 5))
    else:
        raise DatasetError(f"dataset.layout: unknown layout {layout!r}")
    for note in catalogue.notes:
        log.info("%s: %s", root, note)
    return catalogue


def root_of(dataset: dict, index: str | Path) -> Path:
    """The dataset's folder, from its index_file."""
    layout, index = dataset["layout"], Path(index)
    if layout in ("urbansound8k", "synthetic", "esc50"):
        return index.parent.parent
    return index.parents[len(Path(dataset["metadata"]).parts) - 1] if dataset.get("metadata") else index


def index_file(dataset: dict, root: str | Path) -> str:
    """The file (or, for a folder tree without a CSV, the folder) whose change means the dataset changed."""
    layout = dataset["layout"]
    if layout in ("urbansound8k", "synthetic"):
        return str(Path(root) / URBANSOUND8K_METADATA)
    if layout == "esc50":
        return str(Path(root) / ESC50_METADATA)
    return str(Path(root) / dataset["metadata"]) if dataset.get("metadata") else str(root)
