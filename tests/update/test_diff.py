"""The diff of two edge tables: what changed as the walks see it, and the nodes near it."""

from __future__ import annotations

import pytest

from spark_n2v import columns as C
from spark_n2v.errors import UserError
from spark_n2v.update.diff import DiffCounts, arcs, diff, near


def _edges(spark, rows, id_type="string"):
    return spark.createDataFrame(rows, f"src {id_type}, dst {id_type}, weight double")


def _arcs(d):
    return sorted((r[C.SRC], r[C.DST], r[C.CHANGE]) for r in d.arcs.collect())


def _nodes(d):
    return sorted((r[C.ID], r[C.CHANGE]) for r in d.nodes.collect())


def _ids(frame):
    return sorted(r[C.ID] for r in frame.collect())


def test_unchanged_edges_differ_in_nothing_whatever_their_order_and_duplicates(spark):
    old = _edges(spark, [("a", "b", 1.0), ("b", "c", 2.0), ("a", "b", 0.5), ("d", "d", 1.0)])
    # the same graph: rows in another order and direction, the duplicate's weight merged
    new = _edges(spark, [("c", "b", 2.0), ("a", "b", 1.5), ("d", "d", 3.0)])
    d = diff(old, new, directed=False, weighted=True)
    assert d.counts == DiffCounts(0, 0, 0, 0, 0, 0)
    assert d.counts.nothing
    assert _arcs(d) == [] and _nodes(d) == [] and _ids(d.changed) == []


@pytest.mark.parametrize("unique", [False, True])  # no edge twice: the merge may be skipped
def test_added_removed_and_reweighted_edges_with_new_and_vanished_nodes(spark, unique):
    old = _edges(spark, [("a", "b", 1.0), ("b", "c", 1.0), ("c", "d", 1.0), ("d", "e", 1.0)])
    # a-b reweighted, b-c kept, c-d kept, d-e removed (e vanishes), c-f added (f is new),
    # a-c added between old nodes, g only a self-loop (a new node with no arcs)
    new = _edges(spark, [("a", "b", 2.0), ("b", "c", 1.0), ("c", "d", 1.0), ("c", "f", 1.0),
                         ("a", "c", 1.0), ("g", "g", 1.0)])
    d = diff(old, new, directed=False, weighted=True, unique=unique)
    assert _arcs(d) == sorted([
        ("a", "b", C.REWEIGHTED), ("b", "a", C.REWEIGHTED), ("d", "e", C.REMOVED),
        ("e", "d", C.REMOVED), ("c", "f", C.ADDED), ("f", "c", C.ADDED), ("a", "c", C.ADDED),
        ("c", "a", C.ADDED)])
    assert _nodes(d) == [("e", C.VANISHED), ("f", C.NEW), ("g", C.NEW)]
    # both ends of every changed arc, but not the vanished node
    assert _ids(d.changed) == ["a", "b", "c", "d", "f"]
    assert d.counts == DiffCounts(added_edges=2, removed_edges=1, reweighted_edges=1,
                                  new_nodes=2, vanished_nodes=1, changed_nodes=5)


def test_unweighted_graphs_ignore_weights_and_directed_graphs_keep_direction(spark):
    old = _edges(spark, [(1, 2, 1.0), (2, 3, 1.0)], "long")
    new = _edges(spark, [(1, 2, 7.0), (3, 2, 1.0)], "long")
    unweighted = diff(old, new, directed=False, weighted=False)
    assert unweighted.counts.nothing, "the same undirected edges, weights ignored"
    for unique in (False, True):
        directed = diff(old, new, directed=True, weighted=False, unique=unique)
        assert _arcs(directed) == [(2, 3, C.REMOVED), (3, 2, C.ADDED)]
        assert directed.counts == DiffCounts(1, 1, 0, 0, 0, 2)
    assert diff(old, new, directed=True, weighted=True).counts.reweighted_edges == 1


def test_weights_equal_up_to_rounding_are_not_a_change(spark):
    old = _edges(spark, [("a", "b", 0.1), ("a", "b", 0.2)])
    new = _edges(spark, [("a", "b", 0.30000000000000004 - 1e-17)])
    assert diff(old, new, directed=False, weighted=True).counts.nothing


def test_ids_of_another_type_are_refused_in_one_line(spark):
    with pytest.raises(UserError, match="previous run's were bigint"):
        diff(_edges(spark, [(1, 2, 1.0)], "long"), _edges(spark, [("x", "y", 1.0)]),
             directed=False, weighted=False)


def test_nodes_near_a_change_by_hops_on_a_known_graph(spark):
    # a path a-b-c-d-e-f with a branch c-x; the change is at e
    graph_arcs = arcs(_edges(spark, [("a", "b", 1.0), ("b", "c", 1.0), ("c", "d", 1.0), ("d", "e", 1.0),
                                     ("e", "f", 1.0), ("c", "x", 1.0)]), False, False)
    changed = spark.createDataFrame([("e",)], "id string")
    hops = {r[C.ID]: r[C.HOPS] for r in near(graph_arcs, changed, 2).collect()}
    assert hops == {"e": 0, "d": 1, "f": 1, "c": 2}
    hops = {r[C.ID]: r[C.HOPS] for r in near(graph_arcs, changed, 4).collect()}
    assert hops == {"e": 0, "d": 1, "f": 1, "c": 2, "b": 3, "x": 3, "a": 4}
    assert {r[C.ID]: r[C.HOPS] for r in near(graph_arcs, changed, 0).collect()} == {"e": 0}


def test_near_follows_arcs_backwards_in_a_directed_graph(spark):
    # a -> b -> c: a walker at a reaches c in two steps; one at c never reaches a
    graph_arcs = arcs(_edges(spark, [("a", "b", 1.0), ("b", "c", 1.0)]), True, False)
    near_c = {r[C.ID]: r[C.HOPS] for r in
              near(graph_arcs, spark.createDataFrame([("c",)], "id string"), 3).collect()}
    assert near_c == {"c": 0, "b": 1, "a": 2}
    near_a = {r[C.ID]: r[C.HOPS] for r in
              near(graph_arcs, spark.createDataFrame([("a",)], "id string"), 3).collect()}
    assert near_a == {"a": 0}
