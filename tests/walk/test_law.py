"""The walks follow node2vec's exact law (chi-square), and the test can tell when they do not.

The law is written here directly from its definition; every engine is tested against it."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest
from scipy import stats

from tests.helpers import ENGINES, prepared, walks_of, write_csv

# Triangles (close nodes), a return edge at every step, far nodes, uneven weights, string ids.
UNDIRECTED = [("ann", "bob", 1), ("ann", "cy", 2), ("bob", "cy", 1), ("cy", "dee", 3),
              ("bob", "dee", 1), ("dee", "eve", 1), ("eve", "fay", 2), ("dee", "fay", 1)]
# Directed: some arcs have a return arc (bob <-> dee), some do not; "gus" has no out-edges.
DIRECTED = [("ann", "bob", 1), ("bob", "cy", 2), ("cy", "ann", 1), ("bob", "dee", 1),
            ("dee", "bob", 3), ("cy", "dee", 1), ("dee", "eve", 2), ("eve", "cy", 1),
            ("ann", "cy", 1), ("cy", "gus", 1), ("eve", "dee", 1)]
GRAPHS = {"undirected": (UNDIRECTED, False), "directed": (DIRECTED, True)}
WALKS = dict(walk_length=5, num_walks=1200, seed=11)


# --- the exact node2vec law, and a chi-square test against it ----------------------------------

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


@pytest.fixture(scope="module", params=[(g, e) for g in sorted(GRAPHS) for e in ENGINES],
                ids=lambda param: "-".join(param))
def graph(request, spark, tmp_path_factory):
    """Each graph kind, prepared for each engine: every engine path passes the same law tests."""
    kind, engine = request.param
    edges, directed = GRAPHS[kind]
    path = write_csv(tmp_path_factory.mktemp("law") / "edges.csv", edges)
    g = prepared(spark, path, directed=directed, weighted=True, engine=engine)
    yield g, adjacency(edges, directed, weighted=True)
    g.release()


@pytest.mark.parametrize("p,q", [(0.25, 4.0), (4.0, 0.25)])
def test_walks_follow_the_exact_law(spark, graph, tmp_path, p, q):
    prepared_graph, adj = graph
    walks = walks_of(spark, prepared_graph, tmp_path, return_p=p, inout_q=q, **WALKS)
    pvalue, dof = chi_square_pvalue(walks.values(), adj, p, q)
    assert dof >= 12, "too few contexts tested for the test to mean anything"
    print(f"p={p} q={q}: chi-square p-value {pvalue:.3g}, df {dof}")
    assert pvalue > 1e-3, f"walks deviate from the node2vec law (p={pvalue:.2e}, df={dof})"


def test_the_law_test_fails_when_the_bias_is_removed(spark, graph, tmp_path):
    """Unbiased walks (p = q = 1) judged against the (0.25, 4) law must be rejected."""
    prepared_graph, adj = graph
    walks = walks_of(spark, prepared_graph, tmp_path, return_p=1.0, inout_q=1.0, **WALKS)
    assert chi_square_pvalue(walks.values(), adj, 1.0, 1.0)[0] > 1e-3
    assert chi_square_pvalue(walks.values(), adj, 0.25, 4.0)[0] < 1e-9
