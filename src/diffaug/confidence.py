"""How a judge labels generated clips, and the confidence filter (`generate.filter: confidence`) that
keeps the most class-like share of each class."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pandas as pd
import torch


def class_scores(proba: torch.Tensor, labels: torch.Tensor, ids: list[str], classes: Sequence[str]) -> pd.DataFrame:
    """One row per clip: its intended class, the class it is labelled with and the probability
    (`confidence`) given to the intended one; `proba` is (clips, classes)."""
    return pd.DataFrame(
        {
            "clip": ids,
            "class": [classes[i] for i in labels.tolist()],
            "predicted": [classes[i] for i in proba.argmax(1).tolist()],
            "confidence": proba[torch.arange(len(labels)), labels].tolist(),
        }
    )


def share_as_intended(scores: pd.DataFrame) -> float:
    """The share of the clips of `scores` (class_scores) labelled as their intended class."""
    return float((scores["class"] == scores["predicted"]).mean())


def most_confident(scores: pd.DataFrame, keep: float) -> pd.Series:
    """Per row of `scores` (class_scores), whether it is among the `keep` fraction of its class
    (rounded, at least one) that ranks highest. A row ranks by its confidence among the rows of its
    class, or, where a `judge` column says which model scored it, by the share of its judge's rows of
    the class that are more confident: two judges need not be equally confident, so each gives its
    best alike. Ties go to the earlier row."""
    groups = ["class", "judge"] if "judge" in scores.columns else ["class"]
    within = scores.groupby(groups)["confidence"].rank(ascending=False, method="first")
    place = within / scores.groupby(groups)["clip"].transform("size")
    rank = place.groupby(scores["class"]).rank(method="first")
    size = scores.groupby("class")["clip"].transform("size")
    return rank <= (keep * size).round().clip(lower=1)


def judged_scores(
    judges: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    judge_of: Sequence[int],
    x: torch.Tensor,
    labels: torch.Tensor,
    ids: list[str],
    classes: Sequence[str],
) -> pd.DataFrame:
    """class_scores of the clips (x, labels, ids), each row's probabilities from the judge (a function
    of features to class probabilities) that `judge_of` names for it, named in a `judge` column."""
    proba = torch.zeros(len(ids), len(classes))
    for index, rows in judge_rows(judge_of, count=len(judges)):
        proba[rows] = judges[index](x[rows])
    return class_scores(proba, labels, ids, classes).assign(judge=list(judge_of))


def judge_rows(judge_of: Sequence[int], count: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(judge, the rows that `judge_of` gives it) for each of `count` judges that has rows."""
    for index in range(count):
        rows = [i for i, j in enumerate(judge_of) if j == index]
        if rows:
            yield index, torch.tensor(rows, dtype=torch.long)


SCORE_COLUMNS = ["origin", "clip", "class", "judge", "predicted", "confidence"]
"""The columns of score_generated's table; origin: the generator that made the clips, or "sources" for the
pairs' first clips as they are."""


def other_half_scores(
    origin: str,
    judges: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    pairs: pd.DataFrame,
    clips: tuple[torch.Tensor, torch.Tensor, list[str]],
    classes: Sequence[str],
) -> pd.DataFrame:
    """judged_scores of one origin's `clips` (features, labels, ids: one per pair, named by it), each
    by the judge (`judges`: of half 0 and of half 1) of the other half than its pair's (`pairs`: the
    pairs table indexed by pair), which heard neither of the pair's clips; columns SCORE_COLUMNS."""
    x, labels, ids = clips
    judge_of = (1 - pairs.loc[ids, "half"]).tolist()
    scores = judged_scores(judges, judge_of, x, labels, ids, classes).assign(origin=origin)
    return scores[SCORE_COLUMNS]


def pair_fates(pairs: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Every pair of the pairs table with its clip's judge, predicted class, confidence and whether the
    filter `kept` it (`scores`: score_generated's table with a kept column)."""
    judged = scores[["clip", "judge", "predicted", "confidence", "kept"]]
    return pairs.merge(judged, left_on="pair", right_on="clip").drop(columns="clip")
