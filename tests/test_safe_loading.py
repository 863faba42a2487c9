"""Weights and tensors load only through safetensors: a crafted pickle is refused, never run."""

import os
import pickle
import shutil

import pytest
import torch

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
    assert not marker.exists()


def test_a_pipeline_with_pickled_weights_is_refused(tiny_pipeline, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_pipeline, folder)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    marker = tmp_path / "pwned"
    torch.save({"weight": Payload(marker)}, folder / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(Exception, match="safetensors"):
        load_pipeline(folder)
    assert not marker.exists()


def test_the_payload_would_run_if_unpickled(tmp_path):
    """The refusals above mean something: plain unpickling does run this payload."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()
