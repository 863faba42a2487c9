"""Weights and tensors load only through safetensors: a crafted pickle is refused, never run."""

import json
import os
import pickle
import re
import shutil

import pytest
import torch
from helpers import save_latent_pipeline

from diffaug.checkpoint import Checkpoint
from diffaug.diffusion import load_pipeline
from diffaug.features import load_feature_sets
from diffaug.files import load_tensors


class Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _craft(path, marker):
    with open(path, "wb") as handle:
        pickle.dump({"weight": Payload(marker)}, handle)


def test_a_pickle_in_place_of_weights_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    _craft(tmp_path / "model.safetensors", marker)
    with pytest.raises(ValueError, match="model.safetensors: not a safetensors file"):
        load_tensors(tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="not a safetensors file"):
        load_feature_sets(tmp_path / "model.safetensors")
    assert Checkpoint(tmp_path / "model.safetensors", "key").load() is None  # ignored, training starts afresh
    assert not marker.exists()


def _published_as_bin(source, folder):
    """The pipeline `source` saved as pipelines were published before safetensors: `.bin` weights only."""
    load_pipeline(source).save_pretrained(folder, safe_serialization=False)
    assert list(folder.glob("unet/diffusion_pytorch_model.bin")) and not list(folder.rglob("*.safetensors"))
    return folder


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("kind", ["plain", "latent"])
def test_a_pipeline_published_as_bin_loads_and_imports_as_safetensors(kind, tiny_pipeline, tmp_path, monkeypatch):
    from diffaug.steps import import_pretrained

    source = tiny_pipeline if kind == "plain" else tmp_path / "latent"
    if kind == "latent":
        save_latent_pipeline(source)
    published = _published_as_bin(source, tmp_path / "published")
    loads = []
    original_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: loads.append(kw.get("weights_only")) or original_load(*a, **kw))
    expected, loaded = load_pipeline(source), load_pipeline(published)
    assert loads and all(flag is True for flag in loads)  # every .bin read as plain tensors only
    components = ["unet"] + ["vqvae"] * (kind == "latent")
    for name in components:
        torch.testing.assert_close(_state(getattr(loaded, name)), _state(getattr(expected, name)), rtol=0, atol=0)
    import_pretrained(pipeline=str(published), output=str(tmp_path / "imported"))
    imported = tmp_path / "imported"
    assert not list(imported.rglob("*.bin"))
    assert all((imported / name / "diffusion_pytorch_model.safetensors").is_file() for name in components)
    assert not list(published.rglob("*.safetensors"))  # converted aside, the source left as it was
    again = load_pipeline(imported)
    for name in components:
        torch.testing.assert_close(_state(getattr(again, name)), _state(getattr(expected, name)), rtol=0, atol=0)


def _with_bin(tiny_pipeline, tmp_path, content, keep_safetensors=False):
    """A copy of the tiny pipeline whose UNet weights are a `.bin` file holding `content`."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_pipeline, folder)
    if not keep_safetensors:
        (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    path = folder / "unet" / "diffusion_pytorch_model.bin"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return folder, path


@pytest.mark.parametrize(
    "content, problem",
    [
        ("payload", "unsupported GLOBAL posix.system"),
        ({"weight": [1.0, 2.0]}, r"not a mapping of names to tensors \(holds weight: list\)"),
        (b"not a pickle at all", "not plain tensor weights"),
    ],
    ids=["code", "not_tensors", "not_a_pickle"],
)
def test_bin_weights_other_than_plain_tensors_are_refused(tiny_pipeline, tmp_path, content, problem):
    from diffaug.steps import import_pretrained

    marker = tmp_path / "pwned"
    content = {"weight": Payload(marker)} if content == "payload" else content
    folder, path = _with_bin(tiny_pipeline, tmp_path, content)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: refused: .*{problem}"):
        load_pipeline(folder)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        import_pretrained(pipeline=str(folder), output=str(tmp_path / "imported"))
    assert not (tmp_path / "imported").exists() and not marker.exists()


def test_a_pickle_beside_safetensors_weights_is_never_read(tiny_pipeline, tmp_path):
    marker = tmp_path / "pwned"
    folder, _ = _with_bin(tiny_pipeline, tmp_path, {"weight": Payload(marker)}, keep_safetensors=True)
    expected = _state(load_pipeline(tiny_pipeline).unet)
    torch.testing.assert_close(_state(load_pipeline(folder).unet), expected, rtol=0, atol=0)
    assert not marker.exists()


def test_a_hub_id_is_fetched_at_the_pinned_revision(tiny_pipeline, tmp_path, monkeypatch, caplog):
    """Offline: the hub's download is replaced by a snapshot folder of `.bin` weights."""
    from diffusers import AudioDiffusionPipeline

    from diffaug.steps import import_pretrained

    snapshot = _published_as_bin(tiny_pipeline, tmp_path / "snapshot")
    asked = []
    monkeypatch.setattr(
        AudioDiffusionPipeline, "download", lambda name, **kw: asked.append((name, kw)) or str(snapshot)
    )
    import_pretrained(pipeline="someone/audio-diffusion-tiny", output=str(tmp_path / "model"), revision="0123abc")
    assert asked == [("someone/audio-diffusion-tiny", {"revision": "0123abc"})]
    record = json.loads((tmp_path / "model" / "training.json").read_text())
    assert record["pretrained"] == "someone/audio-diffusion-tiny" and record["revision"] == "0123abc"
    load_pipeline(tiny_pipeline, revision="v1")  # a local folder: used as it is, with a warning
    assert asked[1:] == [] and "applies to hub ids only" in caplog.text
    with pytest.raises(FileNotFoundError, match="no such pipeline folder"):
        load_pipeline(tmp_path / "missing" / "model")


def test_the_payload_would_run_if_unpickled(tmp_path):
    """The refusals above mean something: plain unpickling does run this payload."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()
