"""Combining keyword and dense result lists into one ranking."""

from __future__ import annotations

RRF_K = 60


def minmax(scores: dict[int, float]) -> dict[int, float]:
    """Scale a list's scores to [0, 1]; a single candidate (or all equal) scores 1."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo < 1e-12:
        return {i: 1.0 for i in scores}
    return {i: (s - lo) / (hi - lo) for i, s in scores.items()}


def fuse_minmax(keyword: dict[int, float], dense: dict[int, float], dense_weight: float) -> dict[int, float]:
    """Weighted sum of min-max normalized scores; a candidate missing from one list gets 0 there."""
    k, d = minmax(keyword), minmax(dense)
    if not k:
        return dict(d)
    if not d:
        return dict(k)
    return {i: (1 - dense_weight) * k.get(i, 0.0) + dense_weight * d.get(i, 0.0) for i in k.keys() | d.keys()}


def fuse_rrf(keyword: dict[int, float], dense: dict[int, float], dense_weight: float = 0.5) -> dict[int, float]:
    """Reciprocal rank fusion (Cormack et al. 2009), weighted per list."""
    fused: dict[int, float] = {}
    for weight, scores in ((1 - dense_weight, keyword), (dense_weight, dense)):
        ranked = sorted(scores, key=scores.get, reverse=True)
        for rank, i in enumerate(ranked, start=1):
            fused[i] = fused.get(i, 0.0) + 2 * weight / (RRF_K + rank)
    return fused
