"""The numpy kernels on their own: search, random stream, and the step law without Spark."""

from __future__ import annotations

import numpy as np
import pytest

from spark_n2v.streams import uniforms
from spark_n2v.walk.kernels import (Adjacency, StepLaw, groups, propose, resolve,
                                   segment_search)


def test_segment_search_matches_numpy_per_segment():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 9, 50)
    values = np.concatenate([np.sort(rng.integers(0, 20, n)) for n in lengths])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    targets = rng.integers(-1, 22, 50)
    for side in ("left", "right"):
        got = segment_search(values, starts, lengths, targets, side)
        want = [s + np.searchsorted(values[s:s + n], t, side) for s, n, t in
                zip(starts, lengths, targets)]
        assert got.tolist() == want


@pytest.mark.parametrize("q", [0.25, 0.5, 2.0, 3.0])
def test_a_query_needs_only_its_candidate(q):
    """The rule a query's answer is judged by (accepts_edges) gives the full rule's decision,
    u < alpha(t, x), for every scaled uniform propose sends as a query: [lower, envelope)."""
    law = StepLaw(1.0, q, seed=0)
    rng = np.random.default_rng(1)
    scaled = rng.random(100_000) * law.envelope
    query = scaled[(scaled >= law.lower) & (scaled < law.envelope)]
    assert len(query) > 10_000
    for member in (True, False):
        full = query < (1.0 if member else law.alpha_far)
        assert (full == (member == law.accepts_edges)).all()


def test_groups_keep_positions_in_order():
    rng = np.random.default_rng(2)
    for keys in (rng.integers(-1, 40, 5000), rng.integers(0, 2**40, 5000) // 2**36,
                 rng.integers(-2**20, 2**20, 5000)):  # 16-bit radix and general paths
        seen = []
        for key, at in groups(keys):
            assert (keys[at] == key).all() and (np.diff(at) > 0).all()
            seen.append(key)
        assert seen == sorted(set(keys.tolist()))
        assert sum(len(at) for _, at in groups(keys)) == len(keys)


def test_uniforms_depend_only_on_coordinates():
    a = uniforms(7, np.arange(1000), 3, 0, 1)
    assert ((a >= 0) & (a < 1)).all() and abs(a.mean() - 0.5) < 0.03
    assert np.array_equal(a[500:], uniforms(7, np.arange(500, 1000), 3, 0, 1))
    assert not np.array_equal(a, uniforms(8, np.arange(1000), 3, 0, 1))
    assert not np.array_equal(a, uniforms(7, np.arange(1000), 3, 1, 1))


@pytest.mark.parametrize("p,q", [(0.25, 4.0), (4.0, 0.25), (0.1, 1.0), (1.0, 1.0)])
def test_one_step_follows_the_law(p, q):
    """Many walkers at v = 0 that came from t = 1: the kernel's choices match w(v,x)·alpha(t,x)."""
    from scipy import stats
    # v = 0 has neighbours 1 (= t), 2 (also a neighbour of t), 3 (far); weights 1, 2, 3.
    adj = Adjacency(nbrs=np.array([1, 2, 3, 0, 2]), starts=np.array([0, 3]),
                    degrees=np.array([3, 2]), cum=np.array([1 / 6, 3 / 6, 1.0, 0.5, 1.0]),
                    cum_starts=np.array([0, 3]))
    law = StepLaw(p, q, seed=3)
    n = 60000
    walk_id = np.arange(n)
    nxt, attempt = np.full(n, -1), np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    while (nxt < 0).any():  # rounds until every walker has moved, as the walk loop does
        todo = np.flatnonzero(nxt < 0)
        a_next, _, a_attempt, counts, qx, fb = propose(
            law, adj, np.zeros(len(todo), np.int64), walk_id[todo], np.ones(len(todo), np.int64),
            np.full(len(todo), 2), attempt[todo], done[todo])
        b_next, b_attempt = resolve(law, adj, np.ones(len(todo), np.int64), a_next, a_attempt,
                                    counts, qx, fb)
        nxt[todo], attempt[todo] = b_next, b_attempt
    expected = np.array([1 * (1 / p), 2 * 1.0, 3 * (1 / q)])
    observed = np.array([(nxt == x).sum() for x in (1, 2, 3)])
    assert stats.chisquare(observed, expected / expected.sum() * n).pvalue > 1e-3
