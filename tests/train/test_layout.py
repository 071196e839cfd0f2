"""The sgns trainer's graph layout: communities from the walks, cut into partitions by tokens."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import Window
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.cli import main
from spark_n2v.train import layout
from tests.helpers import planted_partition, write_csv


@pytest.fixture(scope="module")
def walked(spark, tmp_path_factory):
    """Walks of the 4-block planted partition (string ids), their vocabulary ranked by count, and
    the blocks."""
    tmp = tmp_path_factory.mktemp("layout")
    edges, blocks = planted_partition()
    walks = str(tmp / "walks")
    assert main(["walk", "--edges", write_csv(tmp / "pp.csv", edges), "--output", walks,
                 "--walk-length", "20", "--num-walks", "10", "--seed", "1"]) == 0
    frame = spark.read.parquet(walks)
    ranked = (frame.select(F.explode(C.WALK).alias(C.ID)).groupBy(C.ID).count()
              .withColumn(C.RANK, (F.row_number().over(
                  Window.orderBy(F.col(C.COUNT).desc(), C.ID)) - 1).cast("long")))
    return frame, ranked.cache(), blocks


def _placed(spark, walked, tmp_path, P=4, seed=5, rounds=layout.ROUNDS):
    walks, ranked, _ = walked
    out = str(tmp_path / "vocab")
    layout.place(spark, ranked, walks, ranked.count(), P, seed, str(tmp_path / "labels"), out,
                 rounds)
    return {r[C.ID]: r.asDict() for r in spark.read.parquet(out).collect()}  # 120 rows


def test_partitions_follow_the_communities_and_hold_equal_tokens(spark, walked, tmp_path):
    _, ranked, blocks = walked
    placed = _placed(spark, walked, tmp_path)
    P = 4
    tokens = np.zeros((4, P))  # block x partition
    for node, row in placed.items():
        tokens[blocks[node], row[C.PART]] += row[C.COUNT]
    kept = tokens.max(axis=1) / tokens.sum(axis=1)
    print(f"share of each block's tokens in its partition: {kept}")
    assert kept.min() >= 0.8, tokens
    assert len(set(tokens.argmax(axis=1))) == 4, "each block in its own partition"
    per_part = tokens.sum(axis=0)
    most = max(r[C.COUNT] for r in placed.values())
    assert np.abs(per_part - per_part.sum() / P).max() <= most, per_part
    # rows: 0..n-1 in each partition, a community's next to each other
    for i in range(P):
        local = sorted(r[C.LOCAL] for r in placed.values() if r[C.PART] == i)
        assert local == list(range(len(local)))
    # the random deal it replaces keeps about 1/P of a block together
    assert sorted(placed) == sorted(r[C.ID] for r in ranked.collect())


def test_the_layout_is_the_same_in_one_task_and_in_spark(spark, walked, tmp_path,
                                                         monkeypatch):
    # 3 rounds (each a few Spark jobs), before the labels settle: ties and unlabelled nodes too
    one = _placed(spark, walked, tmp_path / "one", rounds=3)
    monkeypatch.setattr(layout, "EDGES_IN_ONE_TASK", -1)
    monkeypatch.setattr(layout, "RANK_IN_ONE_TASK", 0)
    spread = _placed(spark, walked, tmp_path / "spread", rounds=3)
    assert one == spread
    assert _placed(spark, walked, tmp_path / "seed", seed=6, rounds=3) != one


def test_the_layout_does_not_depend_on_the_walks_partitioning(spark, walked, tmp_path):
    walks, ranked, blocks = walked
    first = _placed(spark, walked, tmp_path / "a")
    again = _placed(spark, (walks.repartition(7), ranked, blocks), tmp_path / "b")
    assert first == again


def test_labels_spread_from_their_seeds_to_their_community():
    """Two 5-node cliques joined by one edge, a seed in each: each clique takes its seed's
    label, whatever the round's tie-break."""
    pairs = [(a, b) for block in (range(5), range(5, 10)) for a in block for b in block if a != b]
    pairs += [(4, 5), (5, 4)]
    src, dst = (np.array(x, np.int64) for x in zip(*pairs))
    label = np.zeros(10, np.int64)
    has = np.zeros(10, bool)
    label[[0, 9]], has[[0, 9]] = (111, 222), True
    for seed in range(5):
        got, covered = layout.propagate(label, has, src, dst, np.ones(len(src), np.int64), seed,
                                        rounds=4)
        assert covered.all()
        assert set(got[:5]) == {111} and set(got[5:]) == {222}, got
