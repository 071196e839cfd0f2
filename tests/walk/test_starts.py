"""Walks from some nodes only (an update's re-walk): the very walks a full walk writes for them."""

from __future__ import annotations

import pytest

from spark_n2v.config import WalkConfig
from spark_n2v.walk import starts as start_sets
from tests.helpers import ENGINES, prepared, read_walks, walks_of, write_csv

# a ring of 10 with chords, ids "n0".."n9" (node index = rank of the id: n0, n1, n2, ... n9)
RING = [(f"n{i}", f"n{(i + 1) % 10}", 1 + i % 4) for i in range(10)] + \
       [(f"n{i}", f"n{(i + 4) % 10}", 3) for i in range(0, 10, 2)]
WALK = dict(walk_length=9, num_walks=3, return_p=0.5, inout_q=2.0, seed=7)


@pytest.mark.parametrize("engine", ENGINES)
def test_walks_from_some_nodes_are_the_full_walks_of_those_nodes(spark, tmp_path, engine):
    path = write_csv(tmp_path / "ring.csv", RING)
    graph = prepared(spark, path, directed=False, weighted=True, partitions=3, engine=engine)
    everyone = walks_of(spark, graph, tmp_path, engine=engine, partitions=3, **WALK)
    chosen = ["n2", "n7", "n9", "not-a-node"]  # an id not in the graph is ignored
    starts = start_sets.write(spark, graph.store, spark.createDataFrame(
        [(i,) for i in chosen], "id string"), str(tmp_path / "starts"))
    assert starts.nodes == 3
    assert start_sets.Starts.open(spark, str(tmp_path / "starts")) == starts
    out = tmp_path / "some"
    graph.write_walks(spark, WalkConfig(engine=engine, partitions=3, **WALK), str(out / "walks"),
                      str(out / "work"), starts)
    some = read_walks(out / "walks")
    expected = {k: w for k, w in everyone.items() if w[0] in {"n2", "n7", "n9"}}
    assert len(expected) == 3 * 3
    assert some == expected


def test_node_ids_are_the_stores_index(spark, tmp_path):
    graph = prepared(spark, write_csv(tmp_path / "ring.csv", RING), directed=False,
                     weighted=True, partitions=3)
    rows = {r["id"]: r["node"] for r in start_sets.node_ids(spark, graph.store).collect()}
    assert rows == {f"n{i}": i for i in range(10)}  # ids ranked in sort order


def test_no_start_node_gives_no_walks(spark, tmp_path):
    graph = prepared(spark, write_csv(tmp_path / "ring.csv", RING), directed=False,
                     weighted=True, partitions=3)
    starts = start_sets.write(spark, graph.store, spark.createDataFrame([], "id string"),
                              str(tmp_path / "starts"))
    assert starts.nodes == 0
    out = tmp_path / "none"
    graph.write_walks(spark, WalkConfig(partitions=3, **WALK), str(out / "walks"),
                      str(out / "work"), starts)
    assert read_walks(out / "walks") == {}
