"""Atomic outputs and safe tensor files: nothing half-written is ever left under a final name."""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm


@contextmanager
def atomic_output(path: str | os.PathLike):
    """Yield a side path beside `path` for the block to write a file or a folder at; it replaces
    `path` (a file or a whole folder) only if the block finishes, and is removed if it does not."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    _remove(tmp)
    try:
        yield tmp
        _remove(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def folders_in_turn(folders: list[str | os.PathLike], key: str, make) -> list[str]:
    """Make each of `folders` by make(folder, at) (`at`: where to write it), one after another in one
    job, and move them all into place at the end. Each is made aside first, in `.finished/` beside it
    with `key` (a fingerprint of what makes it), so that a job stopped part way takes up the folders it
    finished, unchanged, when it runs again with the same key. Returns the folders made anew."""
    made, places = [], []
    for folder in map(Path, folders):
        aside = folder.parent / ".finished" / folder.name
        places.append((folder, aside, aside.with_name(f"{folder.name}.key")))
    for folder, aside, key_file in places:
        if aside.is_dir() and key_file.is_file() and key_file.read_text() == key:
            continue
        key_file.unlink(missing_ok=True)
        make(folder, aside)
        write_text(key_file, key)
        made.append(str(folder))
    for folder, aside, key_file in places:
        _remove(folder)
        os.replace(aside, folder)
        key_file.unlink()
    for parent in {aside.parent for _, aside, _ in places}:
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
    return made


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data) -> None:
    write_text(path, json.dumps(data, indent=1) + "\n")


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def write_table(path: str | os.PathLike, table) -> None:
    """A pandas table as CSV with a header and no index."""
    with atomic_output(path) as tmp:
        table.to_csv(tmp, index=False)


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """Save tensors with safetensors; `metadata` values are stored as JSON."""
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    with atomic_output(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Load a safetensors file and its JSON metadata; nothing is ever unpickled."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = {k: json.loads(v) for k, v in (handle.metadata() or {}).items()}
            return {k: handle.get_tensor(k) for k in handle.keys()}, meta
    except SafetensorError as error:
        raise ValueError(f"{path}: not a safetensors file ({error}); only safetensors are loaded") from None


def worker_processes(threads: int) -> int:
    """Worker processes for a job of `threads` threads: none with one thread (no process to start)."""
    return threads if threads > 1 else 0


def map_in_workers(function, items: list, workers: int = 0, desc: str | None = ""):
    """An iterator over `function(item)` for every item, in order, computed in `workers` processes
    beside this one (none: here), with a progress bar unless `desc` is None. The processes start
    here, before the caller touches a GPU (a process forked after CUDA set-up cannot use it)."""
    results = iter(DataLoader(_Mapped(function, items), batch_size=None, num_workers=workers))
    return tqdm(results, total=len(items), desc=desc, mininterval=2, disable=desc is None)


class _Mapped(Dataset):
    def __init__(self, function, items: list):
        self.function, self.items = function, items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        with torch.inference_mode():
            return self.function(self.items[index])
