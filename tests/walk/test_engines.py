"""The engines: same graph, same walks, and the automatic choice between them."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from spark_n2v.config import WalkConfig
from spark_n2v.progress import walks_progress
from spark_n2v.walk import local
from spark_n2v.walk.engines import choose
from tests.helpers import edge_table, fails, prepared, walks_of, write_csv

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
    fast = prepared(spark, messy, directed, weighted, engine="local")
    slow = prepared(spark, messy, directed, weighted, engine="distributed")
    assert fast.stats == slow.stats
    assert fast.stats.nodes == 6 and fast.stats.self_loops_dropped == 2
    for p, q in [(0.25, 4.0), (4.0, 0.25), (1.0, 1.0)]:
        args = dict(walk_length=6, num_walks=4, return_p=p, inout_q=q, seed=9)
        assert walks_of(spark, fast, tmp_path, **args) == walks_of(spark, slow, tmp_path, **args)


def test_local_walks_do_not_depend_on_the_number_of_tasks(spark, messy, tmp_path):
    graph = prepared(spark, messy, directed=False, weighted=True, engine="local")
    args = dict(walk_length=8, num_walks=20, return_p=0.5, inout_q=2.0, seed=4)
    assert walks_of(spark, graph, tmp_path, partitions=1, **args) == \
        walks_of(spark, graph, tmp_path, partitions=5, **args)


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


def test_auto_engine_is_local_when_the_graph_fits_and_distributed_otherwise(spark, messy):
    table, edges = edge_table(spark, messy)
    assert choose(table, edges, WalkConfig()).name == "local"
    assert choose(table, edges, WalkConfig(local_max_mb=0)).name == "distributed"
    assert choose(table, edges, WalkConfig(engine="distributed")).name == "distributed"
    assert local.size_mb(table, directed=False, weighted=True) > 0


def test_distributed_engine_logs_one_line_per_step(spark, messy, tmp_path, caplog):
    # 5 of the 6 nodes have edges (13 only has a self-loop): 10 walkers move at the first step.
    graph = prepared(spark, messy, directed=False, weighted=False, engine="distributed")
    with caplog.at_level(logging.INFO, logger="spark_n2v.progress"):
        walks_of(spark, graph, tmp_path, walk_length=4, num_walks=2)
    lines = [r.getMessage() for r in caplog.records if r.name == "spark_n2v.progress"]
    assert [line.split(":")[0] for line in lines] == ["walk step 1/3", "walk step 2/3",
                                                       "walk step 3/3"]
    assert "10 live walkers" in lines[0] and "ETA" in lines[0]
    assert "0 live walkers" in lines[-1]


def test_local_engine_reports_finished_walks(spark, messy, caplog):
    graph = prepared(spark, messy, directed=False, weighted=False, engine="local")
    finished = spark.sparkContext.accumulator(0)
    cfg = WalkConfig(walk_length=5, num_walks=10, partitions=3)
    walks = local.walks_frame(spark, graph, cfg, finished)
    with caplog.at_level(logging.INFO, logger="spark_n2v.progress"):
        with walks_progress(spark, "test job", 60, 5, finished, every=0.01):
            walks.write.format("noop").mode("overwrite").save()
    assert finished.value == 60
    lines = [r.getMessage() for r in caplog.records if r.name == "spark_n2v.progress"]
    assert lines[-1].startswith("walk (local engine): 60 walks in")


def test_forcing_the_local_engine_on_ids_it_cannot_hold_says_what_to_do(spark, capsys, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from spark_n2v.errors import UserError
    path = str(tmp_path / "dates.parquet")
    days = pa.array([1, 2, 3], pa.int32()).cast(pa.date32())
    pq.write_table(pa.table({"src": days, "dst": days.take([1, 2, 0])}), path)
    table, edges = edge_table(spark, path)
    assert choose(table, edges, WalkConfig()).name == "distributed"
    # the library names its parameters; the CLI its flags
    with pytest.raises(UserError, match="walk.engine=local: node ids of type date"):
        choose(table, edges, WalkConfig(engine="local"))
    fails(capsys, ["walk", "--edges", path, "--output", str(tmp_path / "out"), "--engine",
                   "local"], "--engine local: node ids of type date", "use --engine auto or "
          "distributed")
