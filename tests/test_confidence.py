"""The baseline's scores of generated clips and the confidence filter's ranking."""

import pandas as pd
import torch

from diffaug.confidence import class_scores, most_confident


def test_scores_give_the_intended_class_probability_and_the_label():
    proba = torch.tensor([[0.7, 0.3], [0.4, 0.6], [0.9, 0.1]])
    scores = class_scores(proba, torch.tensor([0, 0, 1]), ["a", "b", "c"], ["dog", "siren"])
    assert list(scores["class"]) == ["dog", "dog", "siren"] and list(scores["predicted"]) == ["dog", "siren", "dog"]
    assert scores["confidence"].round(6).tolist() == [0.7, 0.4, 0.1]


def test_the_filter_keeps_the_most_confident_share_of_each_class_at_least_one():
    scores = pd.DataFrame(
        {
            "clip": list("abcdef"),
            "class": ["dog"] * 4 + ["siren"] * 2,
            "confidence": [0.2, 0.9, 0.5, 0.5, 0.1, 0.3],
        }
    )
    assert most_confident(scores, 0.5).tolist() == [False, True, True, False, False, True]  # ties: earlier row
    assert most_confident(scores, 0.0).tolist() == [False, True, False, False, False, True]
