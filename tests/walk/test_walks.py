"""Walk structure: lengths, starts per node, dead ends, ids kept as given, reproducibility."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.helpers import ENGINES, prepared, walks_of, write_csv

RING_WITH_CHORDS = [(f"n{i}", f"n{(i + 1) % 12}", 1 + i % 3) for i in range(12)] + \
                   [(f"n{i}", f"n{(i + 5) % 12}", 2) for i in range(0, 12, 3)]


@pytest.fixture(scope="module")
def ring(spark, tmp_path_factory):
    path = write_csv(tmp_path_factory.mktemp("ring") / "ring.csv", RING_WITH_CHORDS)
    return path


@pytest.mark.parametrize("engine", ENGINES)
def test_every_node_starts_num_walks_walks_of_full_length(spark, ring, tmp_path, engine):
    graph = prepared(spark, ring, directed=False, weighted=True, engine=engine)
    walks = walks_of(spark, graph, tmp_path, walk_length=7, num_walks=3, return_p=0.5, inout_q=2.0)
    assert len(walks) == 12 * 3
    assert sorted(walks) == list(range(36))
    assert Counter(w[0] for w in walks.values()) == {f"n{i}": 3 for i in range(12)}
    assert {len(w) for w in walks.values()} == {7}
    edges = {(a, b) for a, b, _ in RING_WITH_CHORDS} | {(b, a) for a, b, _ in RING_WITH_CHORDS}
    assert all((a, b) in edges for w in walks.values() for a, b in zip(w, w[1:]))


def test_walk_length_one_gives_the_start_only(spark, ring, tmp_path):
    graph = prepared(spark, ring, directed=False, weighted=False)
    walks = walks_of(spark, graph, tmp_path, walk_length=1, num_walks=2)
    assert sorted(len(w) for w in walks.values()) == [1] * 24


@pytest.mark.parametrize("engine", ENGINES)
def test_directed_walks_end_at_nodes_without_out_edges(spark, tmp_path, engine):
    # a -> b -> c -> sink, and b -> a: walks can bounce between a and b, and end at "sink".
    path = write_csv(tmp_path / "dag.csv", [("a", "b", 1), ("b", "c", 1), ("b", "a", 1),
                                            ("c", "sink", 1)])
    graph = prepared(spark, path, directed=True, weighted=False, engine=engine)
    assert graph.stats.nodes == 4 and graph.stats.nodes_without_out_edges == 1
    walks = walks_of(spark, graph, tmp_path, walk_length=6, num_walks=20, seed=3)
    ends_early = [w for w in walks.values() if len(w) < 6]
    assert [w for w in walks.values() if w[0] == "sink"] == [["sink"]] * 20
    assert ends_early and all(w[-1] == "sink" for w in ends_early)
    assert all("sink" not in w[:-1] for w in walks.values())
    assert all(len(w) == 6 for w in walks.values() if w[-1] != "sink")


@pytest.mark.parametrize("engine", ENGINES)
def test_same_seed_same_walks_whatever_the_partitioning(spark, ring, tmp_path, engine):
    """2 or 7 shards (and walk partitions), 12 nodes: every shard count spreads them otherwise."""
    args = dict(walk_length=6, num_walks=2, return_p=0.25, inout_q=4.0, seed=5)
    two = walks_of(spark, prepared(spark, ring, False, True, 2, engine), tmp_path, **args)
    seven = walks_of(spark, prepared(spark, ring, False, True, 7, engine), tmp_path,
                     partitions=7, **args)
    other = walks_of(spark, prepared(spark, ring, False, True, 2, engine), tmp_path,
                     **{**args, "seed": 6})
    assert two == seven
    assert two != other
    assert sum(two[k] != other[k] for k in two) > len(two) // 2


@pytest.mark.parametrize("engine", ENGINES)
def test_integer_ids_stay_integers_and_padded_ids_stay_strings(spark, tmp_path, engine):
    ints = write_csv(tmp_path / "ints.csv", [(10, 20, 1), (20, 30, 1), (30, 10, 1)])
    graph = prepared(spark, ints, directed=False, weighted=False, engine=engine)
    walks = walks_of(spark, graph, tmp_path, walk_length=3, num_walks=1)
    assert {w[0] for w in walks.values()} == {10, 20, 30}
    padded = write_csv(tmp_path / "padded.csv", [("007", "8", 1), ("8", "9", 1)])
    graph = prepared(spark, padded, directed=False, weighted=False, engine=engine)
    walks = walks_of(spark, graph, tmp_path, walk_length=2, num_walks=1)
    assert {w[0] for w in walks.values()} == {"007", "8", "9"}
