"""The judges' scores of generated clips and the confidence filter's ranking."""

import pandas as pd
import torch

from diffaug.confidence import (
    SCORE_COLUMNS,
    class_scores,
    judged_scores,
    most_confident,
    other_half_scores,
    pair_fates,
    share_as_intended,
)


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


def test_each_judge_gives_its_best_alike_however_confident_it_is():
    scores = pd.DataFrame(
        {
            "clip": list("abcdef"),
            "class": ["dog"] * 4 + ["siren"] * 2,
            "judge": [0, 0, 1, 1, 0, 1],
            "confidence": [0.9, 0.8, 0.2, 0.3, 0.1, 0.9],  # judge 0 is the more confident one on dogs
        }
    )
    assert most_confident(scores, 0.5).tolist() == [True, False, False, True, True, False]  # ties: earlier row
    assert most_confident(scores, 0.75).tolist() == [True, True, False, True, True, True]  # 3 of 4 dogs, 2 sirens
    alone = scores.drop(columns="judge")  # one judge: by confidence within the class
    assert most_confident(alone, 0.5).tolist() == [True, True, False, False, False, True]


def test_every_clip_is_scored_by_the_judge_named_for_it():
    judges = [
        lambda x: torch.tensor([[0.9, 0.1]]).expand(len(x), 2),
        lambda x: torch.tensor([[0.2, 0.8]]).expand(len(x), 2),
    ]
    scores = judged_scores(judges, [1, 0, 1], torch.zeros(3, 1), torch.tensor([0, 0, 1]), list("abc"), ["dog", "siren"])
    assert scores["judge"].tolist() == [1, 0, 1] and scores["predicted"].tolist() == ["siren", "dog", "siren"]
    assert scores["confidence"].round(6).tolist() == [0.2, 0.9, 0.8]


def test_each_clip_is_scored_by_the_judge_of_the_other_half_than_its_pair():
    pairs = pd.DataFrame({"pair": ["dog-0", "dog-1", "siren-0"], "class": ["dog", "dog", "siren"], "half": [0, 1, 1]})
    judges = [
        lambda x: torch.tensor([[0.9, 0.1]]).expand(len(x), 2),
        lambda x: torch.tensor([[0.2, 0.8]]).expand(len(x), 2),
    ]
    clips = (torch.zeros(3, 1, 2, 2), torch.tensor([0, 0, 1]), ["dog-0", "dog-1", "siren-0"])
    scores = other_half_scores("diffusion", judges, pairs.set_index("pair"), clips, ["dog", "siren"])
    assert list(scores.columns) == SCORE_COLUMNS and (scores["origin"] == "diffusion").all()
    assert scores["judge"].tolist() == [1, 0, 0] and scores["predicted"].tolist() == ["siren", "dog", "dog"]
    assert share_as_intended(scores) == 1 / 3
    fates = pair_fates(pairs, scores.assign(kept=[True, False, True]))
    assert list(fates.columns) == ["pair", "class", "half", "judge", "predicted", "confidence", "kept"]
    assert fates["kept"].tolist() == [True, False, True] and fates["pair"].tolist() == pairs["pair"].tolist()
