"""Labelling new audio files with a trained classifier folder, results/models/{split}/{arm}/seed{seed}/:
its model.json says how the run made its inputs and built its network, model.safetensors holds the weights."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

import jsonschema
import pandas as pd
import referencing
import torch
import yaml

from .audio import MAX_SECONDS_READ, AudioError, file_problem, inspect_audio
from .classifier import NetworkSettings, load_classifier, probabilities
from .features import FeatureExtractor, FeatureSpec
from .schema import SCHEMA, StrictValidator, feature_size_problem, is_whole, schema_key, schema_problem

DESCRIPTION, WEIGHTS = "model.json", "model.safetensors"
FORMAT = 1
"""Version of model.json's layout."""
MODEL_SCHEMA = files(__package__) / "model.schema.yaml"
"""What model.json may hold. Its features and network settings refer to the config schema's, so that a
trained classifier folder is held to the bounds its run was trained under."""


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
            problem = _first_line(error)
            raise ValueError(f"{weights}: does not fit the network that {path} describes ({problem})") from None
        extractor = FeatureExtractor(spec)
        try:  # one silent clip through features and network, so that a mismatch stops here, not at every file
            with torch.inference_mode():
                model.eval()(extractor.from_audio(torch.zeros(spec.num_samples))[None])
        except (RuntimeError, ValueError) as error:
            raise ValueError(
                f"{path}: its network cannot take its features, of shape {spec.shape} ({_first_line(error)})"
            ) from None
        return cls(model, network, extractor, classes)

    def features_of(self, path: str | Path) -> torch.Tensor:
        """The classifier input of one file, made as the run's real clips were (mono mix, resampling,
        cut or pad, mel); AudioError for a file that the run's manifest would have refused too."""
        if problem := file_problem(path):
            raise AudioError(path, problem)
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
    """(feature spec, network settings, class names) of a model.json, checked against the model schema
    and for features too large to make."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; a classifier folder holds model.json beside model.safetensors "
            "(a folder trained before model.json existed needs its train_classifier run again)"
        )
    try:
        described = json.loads(path.read_text(), parse_constant=_not_a_number)
    except ValueError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    except RecursionError:
        raise ValueError(f"{path}: not a classifier description (nested too deep to read)") from None
    if isinstance(described, dict) and is_whole(described.get("format")) and described["format"] > FORMAT:
        raise ValueError(f"{path}: format {described['format']} is newer than this version of diffaug reads")
    errors = sorted(_model_validator().iter_errors(described), key=lambda e: list(map(str, e.absolute_path)))
    problems = [f"{schema_key(e)}: {_shortened(e)}" for e in errors]
    if not problems and (problem := feature_size_problem(described["features"])):
        problems.append(problem)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    network = NetworkSettings.from_config(described["classifier"])
    return FeatureSpec(**described["features"]), network, described["classes"]


def _shortened(error: jsonschema.ValidationError, length: int = 80) -> str:
    """The problem of a schema error, a long value that it quotes (a whole list or object) cut short."""
    quoted, problem = repr(error.instance), schema_problem(error)
    return problem.replace(quoted, quoted[:length] + "...") if len(quoted) > length else problem


def _not_a_number(constant: str):
    """json.loads would read NaN and Infinity, which JSON does not have, and which no bound refuses."""
    raise ValueError(f"{constant} is not a JSON number")


@cache
def _model_validator() -> jsonschema.Validator:
    """The model schema's validator, its references into the config schema resolved."""
    config = referencing.Resource.from_contents(yaml.safe_load(SCHEMA.read_text()))
    registry = referencing.Registry().with_resource("config.schema.yaml", config)
    return StrictValidator(yaml.safe_load(MODEL_SCHEMA.read_text()), registry=registry)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
