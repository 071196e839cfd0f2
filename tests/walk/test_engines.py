"""The engines: same graph, same walks, and the automatic choice between them."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from spark_n2v.config import WalkConfig
from spark_n2v.progress import walks_progress
from spark_n2v.walk import replicated, sharded, store
from spark_n2v.walk.engines import choose
from tests.helpers import prepared, walks_of, write_csv

# Weighted, with a self-loop, duplicates in both directions, a node seen only in a self-loop, and
# integer ids: everything the two prepare paths must agree on.
MESSY = [(5, 7, 1.5), (7, 5, 0.25), (5, 7, 2.0), (7, 9, 1.0), (9, 11, 3.0), (11, 5, 0.5),
         (9, 9, 1.0), (13, 13, 2.0), (11, 7, 1.0), (15, 9, 0.75)]


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("engines") / "messy.csv", MESSY)


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_both_engines_prepare_the_same_graph_and_walk_the_same_walks(spark, messy, tmp_path,
                                                                     directed, weighted):
    fast = prepared(spark, messy, directed, weighted, engine="replicated")
    slow = prepared(spark, messy, directed, weighted, engine="sharded")
    assert fast.stats == slow.stats
    assert fast.stats.nodes == 6 and fast.stats.self_loops_dropped == 2
    for p, q in [(0.25, 4.0), (4.0, 0.25), (1.0, 1.0)]:
        args = dict(walk_length=6, num_walks=4, return_p=p, inout_q=q, seed=9)
        assert walks_of(spark, fast, tmp_path, **args) == walks_of(spark, slow, tmp_path, **args)


def test_replicated_walks_do_not_depend_on_the_number_of_tasks(spark, messy, tmp_path):
    graph = prepared(spark, messy, directed=False, weighted=True, engine="replicated")
    args = dict(walk_length=8, num_walks=20, return_p=0.5, inout_q=2.0, seed=4)
    assert walks_of(spark, graph, tmp_path, partitions=1, **args) == \
        walks_of(spark, graph, tmp_path, partitions=5, **args)


def test_sharded_walks_do_not_depend_on_packet_sizes(spark, messy, tmp_path):
    """Packets of 3 rows and kernel calls of 5 walkers cross every bound a large graph crosses
    (walkers split over packets, packets merged into kernel calls, walks ending on the way)."""
    graph = prepared(spark, messy, directed=True, weighted=True, engine="sharded")
    tiny = dataclasses.replace(graph, packing=sharded.Packing(packet_rows=3, chunk_rows=5))
    args = dict(walk_length=8, num_walks=30, return_p=0.5, inout_q=2.0, seed=4)
    walks = walks_of(spark, graph, tmp_path, **args)
    assert len(walks) == 180 and any(len(w) < 8 for w in walks.values())  # some walks end early
    assert walks_of(spark, tiny, tmp_path, **args) == walks


def test_walk_paths_do_not_depend_on_candidates_per_round():
    """Attempt a's candidate depends on a alone, so drawing 1 or 6 per round changes nothing."""
    from spark_n2v.walk.kernels import Adjacency, StepLaw, walk_paths
    rng = np.random.default_rng(3)
    src, dst = rng.integers(0, 300, 3000), rng.integers(0, 300, 3000)
    keys = np.unique(np.concatenate([src * 300 + dst, dst * 300 + src]))
    keys = keys[keys // 300 != keys % 300]
    degrees = np.bincount(keys // 300, minlength=300)
    starts = np.concatenate([[0], np.cumsum(degrees)[:-1]])
    adj = Adjacency(keys % 300, starts, degrees, None, None)
    law = StepLaw(0.3, 3.0, seed=1, symmetric=True)
    walk_id = np.arange(900)
    one = walk_paths(law, adj, walk_id, walk_id % 300, 12, attempts=1)
    six = walk_paths(law, adj, walk_id, walk_id % 300, 12, attempts=6)
    assert np.array_equal(one[0], six[0]) and np.array_equal(one[1], six[1])


def test_auto_engine_replicates_when_the_store_fits_and_shards_otherwise(spark, messy):
    graph = prepared(spark, messy, directed=False, weighted=True).store
    assert 0 < graph.megabytes < 0.01
    assert choose(spark, graph, WalkConfig()).name == "replicated"
    assert choose(spark, graph, WalkConfig(replicate_max_mb=0)).name == "sharded"
    assert choose(spark, graph, WalkConfig(engine="sharded")).name == "sharded"
    # the earlier names still work
    assert choose(spark, graph, WalkConfig(engine="local")).name == "replicated"
    assert choose(spark, graph, WalkConfig(engine="distributed")).name == "sharded"


def test_replicate_budget_comes_from_the_executors_memory(spark):
    assert replicated._megabytes("4g") == 4096 and replicated._megabytes("512m") == 512
    assert replicated._megabytes("300") == 300 and replicated._megabytes("lots") is None
    assert replicated.budget_mb(spark, WalkConfig(replicate_max_mb=7)) == 7
    driver = replicated._megabytes(spark.sparkContext.getConf().get("spark.driver.memory", "1g"))
    assert replicated.budget_mb(spark, WalkConfig()) == driver  # local mode: the driver's memory


def test_sharded_engine_logs_one_line_per_step(spark, messy, tmp_path, caplog):
    # 5 of the 6 nodes have edges (13 only has a self-loop): 10 walkers move at the first step.
    graph = prepared(spark, messy, directed=False, weighted=False, engine="sharded")
    with caplog.at_level(logging.INFO, logger="spark_n2v.progress"):
        walks_of(spark, graph, tmp_path, walk_length=4, num_walks=2)
    lines = [r.getMessage() for r in caplog.records if r.name == "spark_n2v.progress"]
    assert [line.split(":")[0] for line in lines] == ["walk step 1/3", "walk step 2/3",
                                                       "walk step 3/3"]
    assert "10 live walkers" in lines[0] and "ETA" in lines[0]
    assert "0 live walkers" in lines[-1]


def test_replicated_engine_reports_finished_walks(spark, messy, caplog):
    graph = prepared(spark, messy, directed=False, weighted=False, engine="replicated")
    finished = spark.sparkContext.accumulator(0)
    cfg = WalkConfig(walk_length=5, num_walks=10, partitions=3)
    walks = replicated.walks_frame(spark, graph, cfg, finished)
    with caplog.at_level(logging.INFO, logger="spark_n2v.progress"):
        with walks_progress(spark, "test job", 60, 5, finished, every=0.01):
            walks.write.format("noop").mode("overwrite").save()
    assert finished.value == 60
    lines = [r.getMessage() for r in caplog.records if r.name == "spark_n2v.progress"]
    assert lines[-1].startswith("walk (replicated engine): 60 walks in")


@pytest.mark.parametrize("engine", ["replicated", "sharded"])
def test_any_id_type_the_input_has_walks_and_comes_back(spark, tmp_path, engine):
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq
    path = str(tmp_path / "dates.parquet")
    days = pa.array([1, 2, 3], pa.int32()).cast(pa.date32())
    pq.write_table(pa.table({"src": days, "dst": days.take([1, 2, 0])}), path)
    graph = prepared(spark, path, directed=False, weighted=False, engine=engine)
    walks = walks_of(spark, graph, tmp_path, walk_length=4, num_walks=1)
    day = [datetime.date(1970, 1, d) for d in (2, 3, 4)]
    assert sorted(w[0] for w in walks.values()) == day
    assert all(set(w) <= set(day) and len(w) == 4 for w in walks.values())


def test_store_shards_own_nodes_by_modulo_and_map_back_the_graph(spark, messy):
    """Shard k holds nodes k, k + S, ...: its rows, ids and neighbours, as the whole layout."""
    graph = prepared(spark, messy, directed=False, weighted=True, partitions=4,
                     engine="replicated").store
    whole, _ = store.whole(graph)
    assert whole.ids.to_pylist() == [5, 7, 9, 11, 13, 15]
    for k in range(4):
        part, _ = store.shard(graph, k)
        nodes = list(range(k, 6, 4))
        assert part.ids.to_pylist() == [whole.ids[v].as_py() for v in nodes]
        for r, v in enumerate(nodes):
            a, b = part.indptr[r], part.indptr[r + 1]
            assert list(part.nbrs[a:b]) == list(whole.nbrs[whole.indptr[v]:whole.indptr[v + 1]])
            assert list(part.cum[a:b]) == list(whole.cum[whole.indptr[v]:whole.indptr[v + 1]])
    # 7 (node 1) neighbours 5, 9, 11; 7 - 5 merges 1.5, 0.25 and 2.0 (both directions): 3.75
    row = slice(whole.indptr[1], whole.indptr[2])
    assert list(whole.nbrs[row]) == [0, 2, 3]
    assert list(whole.cum[row]) == pytest.approx([3.75 / 5.75, 4.75 / 5.75, 1.0])


def test_shard_keys_send_each_shard_to_its_own_partition(spark):
    """One shard per task: the balance of every step and of the store's write depends on it."""
    from pyspark.sql import functions as F
    for partitions in (2, 5, 16):
        keys = store.partition_keys(spark, partitions)
        nodes = spark.range(1000).repartition(partitions, store.on_shards(keys, F.col("id")))
        placed = nodes.select((F.col("id") % partitions).alias("shard"),
                              F.spark_partition_id().alias("part")).distinct().collect()
        assert sorted((r["shard"], r["part"]) for r in placed) == \
            [(k, k) for k in range(partitions)]


# String ids whose sort order differs between bytes, code points and case-folding, and integer ids
# on both sides of zero: the one-task writer ranks them in Arrow, the spread one in Spark.
STRINGY = [("b", "a", 1.0), ("é", "z", 2.0), ("Z", "b", 0.5), ("中", "é", 1.0), ("a", "b", 3.0),
           ("😀", "a", 1.0), ("a", "a", 1.0), ("ab", "a", 0.25), ("~", "ab", 1.0)]
SIGNED = [(-3, 4, 1.0), (4, -3, 2.0), (0, -3, 1.0), (2**40, 0, 1.0), (7, 7, 1.0), (-2**40, 4, 0.5)]


@pytest.mark.parametrize("rows", [STRINGY, SIGNED, MESSY], ids=["strings", "signed", "messy"])
@pytest.mark.parametrize("directed", [False, True])
def test_one_task_and_spread_writers_write_the_same_store(spark, tmp_path, monkeypatch, rows,
                                                          directed):
    """Small graphs are prepared by one task, large ones by many: the same files, bit for bit."""
    from tests.helpers import edge_table
    path = write_csv(tmp_path / "edges.csv", rows)
    table, _ = edge_table(spark, path, directed=directed, weighted=True)
    one = store.write(spark, table, directed, True, 3, str(tmp_path / "one"))
    monkeypatch.setattr(store, "ONE_TASK_EDGES", 0)
    spread = store.write(spark, table, directed, True, 3, str(tmp_path / "spread"))
    assert one.as_json() | {"key": None} == spread.as_json() | {"key": None}
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*")
                   if not p.name.startswith((".", "_")))
    assert len(files) == 3 * 4
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "spread" / name).read_bytes(), \
            name
