"""The walks follow node2vec's exact law (chi-square), and the test can tell when they do not."""

from __future__ import annotations

import pytest

from tests.conftest import write_csv
from tests.helpers import ENGINES, prepared, walks_of
from tests.law import adjacency, chi_square_pvalue

# Triangles (close nodes), a return edge at every step, far nodes, uneven weights, string ids.
UNDIRECTED = [("ann", "bob", 1), ("ann", "cy", 2), ("bob", "cy", 1), ("cy", "dee", 3),
              ("bob", "dee", 1), ("dee", "eve", 1), ("eve", "fay", 2), ("dee", "fay", 1)]
# Directed: some arcs have a return arc (bob <-> dee), some do not; "gus" has no out-edges.
DIRECTED = [("ann", "bob", 1), ("bob", "cy", 2), ("cy", "ann", 1), ("bob", "dee", 1),
            ("dee", "bob", 3), ("cy", "dee", 1), ("dee", "eve", 2), ("eve", "cy", 1),
            ("ann", "cy", 1), ("cy", "gus", 1), ("eve", "dee", 1)]
GRAPHS = {"undirected": (UNDIRECTED, False), "directed": (DIRECTED, True)}
WALKS = dict(walk_length=5, num_walks=1200, seed=11)


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
