"""The exact node2vec law, written directly from its definition, and a chi-square test against it."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
from scipy import stats


def adjacency(edges, directed: bool, weighted: bool) -> dict:
    """{v: {x: w(v, x)}} from (src, dst, weight) rows, duplicates summed, self-loops dropped."""
    out: dict = defaultdict(dict)
    for src, dst, weight in edges:
        if src == dst:
            continue
        pairs = [(src, dst)] if directed else [(src, dst), (dst, src)]
        for a, b in pairs:
            out[a][b] = out[a].get(b, 0.0) + (float(weight) if weighted else 1.0)
            if not weighted:
                out[a][b] = 1.0
    return out


def step_law(adj: dict, t, v, p: float, q: float) -> dict:
    """P(next = x | previous t, current v): w(v,x) * alpha(t,x), normalised; t=None for the first."""
    scores = {}
    for x, w in adj.get(v, {}).items():
        if t is None:
            alpha = 1.0
        elif x == t:
            alpha = 1.0 / p
        elif x in adj.get(t, {}):
            alpha = 1.0
        else:
            alpha = 1.0 / q
        scores[x] = w * alpha
    total = sum(scores.values())
    return {x: s / total for x, s in scores.items()}


def transitions(walks) -> tuple[Counter, Counter]:
    """(first-step counts keyed (s, x), later-step counts keyed (t, v, x))."""
    first, later = Counter(), Counter()
    for walk in walks:
        if len(walk) > 1:
            first[(walk[0], walk[1])] += 1
        for t, v, x in zip(walk, walk[1:], walk[2:]):
            later[(t, v, x)] += 1
    return first, later


def chi_square_pvalue(walks, adj: dict, p: float, q: float) -> tuple[float, int]:
    """Pooled chi-square over every context (first steps and (t, v) pairs). Returns (p-value, df)."""
    first, later = transitions(walks)
    contexts: dict = defaultdict(Counter)
    for (s, x), n in first.items():
        contexts[(None, s)][x] += n
    for (t, v, x), n in later.items():
        contexts[(t, v)][x] += n
    statistic, dof = 0.0, 0
    for (t, v), counts in contexts.items():
        law = step_law(adj, t, v, p, q)
        assert set(counts) <= set(law), f"moved off the graph from {v}: {set(counts) - set(law)}"
        total = sum(counts.values())
        observed = np.array([counts.get(x, 0) for x in law])
        expected = np.array([law[x] * total for x in law])
        if len(law) < 2 or expected.min() < 5:
            continue  # too few visits for the chi-square approximation
        statistic += float(((observed - expected) ** 2 / expected).sum())
        dof += len(law) - 1
    assert dof > 0
    return float(stats.chi2.sf(statistic, dof)), dof
