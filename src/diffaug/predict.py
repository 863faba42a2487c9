"""Labelling new audio files with a trained classifier folder, results/models/{split}/{arm}/seed{seed}/:
its model.json says how the run made its inputs and built its network, model.safetensors holds the weights."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch

from .audio import MAX_SECONDS_READ, AudioError, inspect_audio
from .classifier import NetworkSettings, load_classifier, probabilities
from .features import FeatureExtractor, FeatureSpec

DESCRIPTION, WEIGHTS = "model.json", "model.safetensors"
FORMAT = 1
"""Version of model.json's layout."""


def describe_model(network: NetworkSettings, features: dict, classes: Sequence[str]) -> dict:
    """model.json of a trained run: all that labelling new files needs besides the weights."""
    return {
        "format": FORMAT,
        "classes": list(classes),
        "features": asdict(FeatureSpec(**features)),
        "classifier": network.description(),
    }


@dataclass(frozen=True)
class TrainedClassifier:
    """A trained run's network with the feature extractor and class names it was trained with."""

    model: torch.nn.Module
    network: NetworkSettings
    extractor: FeatureExtractor
    classes: list[str]

    @classmethod
    def load(cls, folder: str | Path) -> TrainedClassifier:
        """The classifier of a folder holding model.json and model.safetensors; errors name the file."""
        path, weights = Path(folder) / DESCRIPTION, Path(folder) / WEIGHTS
        spec, network, classes = _read_description(path)
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: missing; the classifier folder holds no weights")
        try:
            model = load_classifier(weights, network, len(classes))
        except (RuntimeError, KeyError, TypeError) as error:
            first = str(error).strip().splitlines()[0]
            raise ValueError(f"{weights}: does not fit the network that {path} describes ({first})") from None
        return cls(model, network, FeatureExtractor(spec), classes)

    def features_of(self, path: str | Path) -> torch.Tensor:
        """The classifier input of one file, made as the run's real clips were (mono mix, resampling,
        cut or pad, mel); AudioError for a file that the run's manifest would have refused too."""
        if not Path(path).is_file():
            raise AudioError(path, "no such file")
        inspect_audio(path, MAX_SECONDS_READ)
        features = self.extractor.from_file(path)
        if not features.isfinite().all():
            raise AudioError(path, "its features are NaN or infinite")
        return features

    def label(self, paths: Sequence[str | Path], device: str = "auto") -> tuple[pd.DataFrame, list[AudioError]]:
        """A row per usable file (file, predicted, the probability of each class), in order, and
        the files that could not be used."""
        labelled, inputs, failed = [], [], []
        with torch.inference_mode():
            for path in paths:
                try:
                    inputs.append(self.features_of(path))
                    labelled.append(str(path))
                except AudioError as error:
                    failed.append(error)
        x = torch.stack(inputs) if inputs else torch.empty(0, *self.extractor.spec.shape)
        proba = probabilities(self.model, x, self.network.precision, device)
        table = pd.DataFrame(proba.numpy(), columns=self.classes)
        table.insert(0, "predicted", [self.classes[i] for i in proba.argmax(1).tolist()])
        table.insert(0, "file", labelled)
        return table, failed


def _read_description(path: Path) -> tuple[FeatureSpec, NetworkSettings, list[str]]:
    """(feature spec, network settings, class names) of a model.json."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; a classifier folder holds model.json beside model.safetensors "
            "(a folder trained before model.json existed needs its train_classifier run again)"
        )
    try:
        described = json.loads(path.read_text())
        if described.get("format", FORMAT) > FORMAT:
            raise ValueError(f"format {described['format']} is newer than this version of diffaug reads")
        network = NetworkSettings.from_config(described["classifier"])
        return FeatureSpec(**described["features"]), network, list(described["classes"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        problem = f"missing key {error}" if isinstance(error, KeyError) else str(error)
        raise ValueError(f"{path}: not a classifier description ({problem})") from None
