"""`spark-n2v update`: which walks are walked again, a complete and reproducible new output, an
unchanged graph, and a --previous it cannot start from."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from spark_n2v import columns as C
from spark_n2v.cli import main
from spark_n2v.config import TrainConfig
from spark_n2v.stages.update import (again_starts, default_walks, new_neighbours, token_counts,
                                     trained_walks, whole_ids)
from spark_n2v.train.sgns import warm_chunks
from spark_n2v.update.diff import arcs, diff
from tests.helpers import Crash, crash_after_round, fails, planted_partition, write_csv

# one epoch: rounds the kill test can count (30 tokens a node would train 5 by default)
WALK_AND_TRAIN = ["--trainer", "sgns", "--dim", "8", "--walk-length", "10", "--num-walks", "3",
                  "--window", "3", "--epochs", "1", "--seed", "5"]


def _edges(spark, rows):
    return spark.createDataFrame([(a, b, 1.0) for a, b in rows],
                                 "src string, dst string, weight double")


def _ids(frame):
    return sorted(r[C.ID] for r in frame.collect())


def _walks(spark, rows):
    return spark.createDataFrame(rows, "walk_id long, walk array<string>")


PATH = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("e", "f"), ("f", "g")]


@pytest.mark.parametrize("radius, expected", [(0, {"a", "c"}), (1, {"a", "b", "c", "d"})])
def test_walked_again_near_an_added_edge(spark, radius, expected):
    # a path a-...-g and a new edge a-c: its ends, and at radius 1 their neighbours
    old, new = _edges(spark, PATH), _edges(spark, PATH + [("a", "c")])
    changes = diff(old, new, directed=False, weighted=False)
    previous = _walks(spark, [(0, ["g", "f", "e"]), (1, ["d", "c", "b"])])
    again = again_starts(changes, arcs(new, False, False), previous, radius)
    assert {r[C.ID] for r in again.collect()} == expected


def test_walked_again_new_nodes_and_the_starts_of_walks_through_a_vanished_node(spark):
    # g vanishes (f-g removed), h arrives alone with a self-loop; a walk from d visited g
    old = _edges(spark, PATH)
    new = _edges(spark, PATH[:-1] + [("h", "h")])
    changes = diff(old, new, directed=False, weighted=False)
    previous = _walks(spark, [(0, ["d", "e", "f", "g"]), (1, ["b", "c", "d", "e"]),
                              (2, ["g", "f", "e", "d"])])
    again = again_starts(changes, arcs(new, False, False), previous, 0)
    # f: the removed edge's end in the new graph; h: new; d and g: their walks visited g (g is
    # not in the new graph: the start set ignores it)
    assert {r[C.ID] for r in again.collect()} == {"f", "h", "d", "g"}


def test_the_walks_trained_are_each_nodes_first_ones_and_all_of_a_new_nodes(spark):
    # 3 nodes, 4 walks each (walk r of node v: r x 3 + v); c is new
    starts = ["a", "b", "c"]
    walks = _walks(spark, [(r * 3 + v, [starts[v], "x"]) for r in range(4) for v in range(3)])
    new = spark.createDataFrame([("c",)], "id string")
    trained = sorted(r[C.WALK_ID] for r in trained_walks(walks, new, 3, 2).collect())
    assert trained == [0, 1, 2, 3, 4, 5, 8, 11]
    assert trained_walks(walks, new, 3, 4).count() == 12
    assert default_walks(10) == 2 and default_walks(3) == 1 and default_walks(1) == 1


@pytest.mark.parametrize("directed", [False, True])
def test_new_nodes_start_at_their_old_neighbours_or_train_theirs_whole(spark, directed):
    # h arrives with h -> a, c -> h and x -> h (x also new); b-d is added between old nodes
    old = _edges(spark, PATH)
    new = _edges(spark, PATH + [("h", "a"), ("c", "h"), ("x", "h"), ("b", "d")])
    changes = diff(old, new, directed=directed, weighted=False)
    pairs = sorted((r[C.ID], r[C.NEIGHBOUR]) for r in new_neighbours(changes).collect())
    assert pairs == [("h", "a"), ("h", "c")], "old neighbours either way, not the new x"
    assert _ids(whole_ids(changes, neighbours=False)) == ["h", "x"]
    assert _ids(whole_ids(changes, neighbours=True)) == ["a", "c", "h", "x"]


@pytest.mark.parametrize("id_type, walks", [
    ("string", [["a", "b", "a"], ["c"], [], ["b", "b"]]),
    ("long", [[1, 2, 1], [3], [], [2, 2]])])
def test_token_counts_count_every_token(spark, id_type, walks):
    frame = spark.createDataFrame(list(enumerate(walks)), f"walk_id long, walk array<{id_type}>")
    counted = {r[C.ID]: r[C.COUNT] for r in token_counts(frame.repartition(3)).collect()}
    assert counted == Counter(t for w in walks for t in w)


def test_a_warm_start_at_one_partition_trains_its_share_in_fewer_rounds():
    one, four = TrainConfig(trainer="sgns", chunks=8), TrainConfig(trainer="sgns", chunks=8,
                                                                  partitions=4)
    assert warm_chunks(one, 1000, 0.1) == 1 and warm_chunks(one, 1000, 0.3) == 3
    assert warm_chunks(one, 1000, 1.0) == 8
    assert warm_chunks(four, 1000, 0.1) == 8, "at P > 1 chunks matter for quality: kept"


@pytest.fixture(scope="module")
def previous(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("update")
    edges, labels = planted_partition()
    out = tmp / "run"
    assert main(["run", "--edges", write_csv(tmp / "e0.csv", edges), "--output", str(out),
                 *WALK_AND_TRAIN]) == 0
    # tonight: v5 loses every edge (vanishes), 3 edges go, v200 arrives, one edge is added
    changed = [e for e in edges if "v5" not in e[:2]][3:] + \
        [("v0", "v200", 1), ("v200", "v1", 1), ("v7", "v100", 1)]
    return tmp, str(out), write_csv(tmp / "e1.csv", changed), changed


def _table(path, key):
    table = pq.read_table(str(path)).to_pydict()
    return dict(zip(table[key], table["walk" if key == "walk_id" else "embedding"]))


def test_update_writes_a_complete_output_the_same_for_the_same_seed_even_after_a_kill(
        previous, monkeypatch, caplog):
    tmp, run, edges, changed = previous
    outs = [tmp / f"update-{k}" for k in range(2)]
    command = ["update", "--previous", run, "--edges", edges, *WALK_AND_TRAIN,
               "--update-walks", "2"]
    revive = crash_after_round(monkeypatch, 1)  # of 2: a warm start's share in fewer rounds
    with pytest.raises(Crash):
        main([*command, "--output", str(outs[0])])
    revive()
    assert not outs[0].exists()
    caplog.clear()
    with caplog.at_level("INFO", logger="spark_n2v"):
        assert main([*command, "--output", str(outs[0])]) == 0  # resumes
    lines = [r.getMessage() for r in caplog.records]
    assert any("resuming after round 1 of 2" in line for line in lines), lines
    assert not any(line.startswith("walk:") for line in lines), "the new walks were kept"
    assert main([*command, "--output", str(outs[1])]) == 0  # uninterrupted
    nodes = {a for e in changed for a in e[:2]}
    first, again = _table(outs[0] / "embeddings", "id"), _table(outs[1] / "embeddings", "id")
    assert set(first) == nodes and "v5" not in first and "v200" in first
    assert all(np.array_equal(first[k], again[k]) for k in first), \
        "same seed, same update, killed and resumed or not"
    walks, before = _table(outs[0] / "walks", "walk_id"), _table(f"{run}/walks", "walk_id")
    ordered = sorted(nodes)
    assert sorted(walks) == list(range(3 * len(nodes))), "every node's walks, numbered as a run"
    assert all(w[0] == ordered[k % len(nodes)] for k, w in walks.items())
    record = json.load(open(outs[0] / "_run.json"))
    changes = record["counts"]["changes"]
    assert changes["new_nodes"] == 1 and changes["vanished_nodes"] == 1
    assert changes["added_edges"] == 3
    walked_again = record["counts"]["walked_again"]
    assert 0 < walked_again < len(walks)
    # the first 2 of each node's new walks trained and all 3 of the new v200's (it starts at
    # its neighbours' mean: theirs need no more)
    assert record["counts"]["trained_walks"] == walked_again // 3 * 2 + 1
    # the walks not walked again are the previous run's, as they were
    kept = [w for w in walks.values() if w in before.values()]
    assert len(kept) >= len(walks) - walked_again
    assert all(not ("v5" in w) for w in walks.values())
    old = _table(f"{run}/embeddings", "id")
    cosines = [np.dot(old[k], first[k]) / np.linalg.norm(old[k]) / np.linalg.norm(first[k])
               for k in first if k in old]
    assert np.median(cosines) > 0.9, "a warm start: vectors stay near the previous ones"


def test_an_unchanged_graph_keeps_the_previous_tables(previous, tmp_path):
    tmp, run, _, _ = previous
    out = tmp_path / "same"
    assert main(["update", "--previous", run, "--edges", str(tmp / "e0.csv"), "--output", str(out),
                 *WALK_AND_TRAIN]) == 0
    assert _table(out / "embeddings", "id").keys() == _table(f"{run}/embeddings", "id").keys()
    same = _table(out / "embeddings", "id")
    assert all(np.array_equal(v, _table(f"{run}/embeddings", "id")[k]) for k, v in same.items())
    record = json.load(open(out / "_run.json"))
    assert not any(record["counts"]["changes"].values())


def test_a_previous_output_it_cannot_start_from_is_refused_in_one_line(capsys, previous, tmp_path):
    tmp, run, edges, _ = previous
    base = ["update", "--edges", edges, "--output", str(tmp_path / "out")]
    fails(capsys, [*base, "--previous", str(tmp), *WALK_AND_TRAIN],
          "is not the output of spark-n2v run or update")
    other = [*WALK_AND_TRAIN[:-2], "--seed", "5"]
    other[other.index("--walk-length") + 1] = "12"
    fails(capsys, [*base, "--previous", run, *other],
          "was made with --walk-length 10, this update has --walk-length 12")
    fails(capsys, [*base, "--previous", run, *WALK_AND_TRAIN[2:]],
          "an update trains with --trainer sgns")
    assert not (tmp_path / "out").exists()
