"""Pareto fronts, weighted scores and hard filters against brute-force definitions."""

import numpy as np
import pytest

from tansaku.screening.rank import (Criterion, Objective, RankingSpec, non_dominated, pareto_ranks, rank,
                                    weighted_score)


def brute_front(points):
    n = len(points)
    dominated = [any(np.all(points[j] <= points[i]) and np.any(points[j] < points[i]) for j in range(n))
                 for i in range(n)]
    return np.flatnonzero(~np.array(dominated))


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_non_dominated_matches_brute_force(dims):
    rng = np.random.default_rng(dims)
    points = rng.random((300, dims))
    points[10] = points[20]  # ties: identical points are both optimal or both dominated
    np.testing.assert_array_equal(non_dominated(points), brute_front(points))


@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_pareto_ranks_are_successive_fronts(kind):
    rng = np.random.default_rng(1)
    # discrete values: many ties in single objectives and many identical points
    points = rng.random((120, 3)) if kind == "continuous" else rng.integers(0, 4, (200, 3)).astype(float)
    ranks = pareto_ranks(points, max_fronts=4)
    remaining = np.arange(len(points))
    for front_index in range(4):
        front = remaining[brute_front(points[remaining])]
        assert set(np.flatnonzero(ranks == front_index)) == set(front)
        remaining = np.setdiff1d(remaining, front)
    assert (ranks[remaining] == 4).all()


def test_weighted_score_is_one_for_the_best_and_zero_for_the_worst():
    points = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.0]])
    score = weighted_score(points, np.array([1.0, 3.0]))
    np.testing.assert_allclose(score, [1.0, 0.0, 0.875])


def test_rank_applies_filters_eligibility_and_directions():
    columns = {
        "e_above_hull": np.array([0.00, 0.02, 0.30, 0.01, np.nan, 0.00]),
        "mu0_ms": np.array([1.2, 1.6, 2.0, 1.0, 1.9, 1.7]),
    }
    eligible = np.array([True, True, True, True, True, False])  # last row is a reference
    spec = RankingSpec(objectives=(Objective("e_above_hull", "min"), Objective("mu0_ms", "max")),
                       filters=(Criterion("e_above_hull", "<=", 0.1),))
    result = rank(columns, spec, eligible)
    np.testing.assert_array_equal(result.passes_filters, [True, True, False, True, False, False])
    # row 3 (0.01, 1.0) is dominated by row 0 (0.00, 1.2); rows 0 and 1 trade stability for Ms
    np.testing.assert_array_equal(result.pareto_rank, [0, 0, -1, 1, -1, -1])
    assert result.rank[2] == result.rank[4] == result.rank[5] == -1
    assert sorted(result.rank[[0, 1, 3]]) == [1, 2, 3] and result.rank[3] == 3


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="direction"):
        Objective("mu0_ms", "up")
    with pytest.raises(ValueError, match='bad operator "=>"'):  # the one filter grammar's message
        Criterion("mu0_ms", "=>", 1.0)
    with pytest.raises(KeyError, match="ranking needs column 'nope'"):
        rank({"mu0_ms": np.ones(2)}, RankingSpec(objectives=(Objective("nope"),)), np.ones(2, bool))
