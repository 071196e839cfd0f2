"""Where each node's rows live in the sgns trainer's tables: partitions that follow the graph.

Walks are local: a walk of 80 steps stays mostly inside a few communities. Nodes dealt into
partitions at random put a walk's (centre, context) pairs evenly into all P x P buckets, and its
rows anywhere in gigabytes of tables. Here the order comes from the walks themselves (the trainer
receives walks only; consecutive visits are the graph's edges):

1. Transitions: each pair of consecutive visits (a, b), a != b, counted in both directions; each
   node keeps its MAX_NEIGHBOURS heaviest (bounded work on hubs).
2. Communities: label propagation over the transitions, as DataFrame joins (in one task up to
   EDGES_IN_ONE_TASK transitions, with the same result). A share SEED_SHARE of the nodes (a seeded
   hash; at least SEEDS_PER_PARTITION per partition) starts with a label of its own, the others
   with none; each round every node takes the label of most transition weight among its
   neighbours (ties: a seeded choice per round), and keeps its own where no neighbour has one.
   From a few labels instead of one per node, the labels cover their communities in a few rounds
   and merge in a few more (one label per node: thousands remain after 10 rounds on a 20-block
   graph). Rounds stop once no label changes (at most ROUNDS). Nodes left without a label are
   their own community.
3. Chain: the communities in an order where each next one is the one most joined to the last
   (chain): pieces of one community, and neighbouring communities, sit side by side.
4. Cut: nodes sorted by (their community's place in the chain, count descending, id), cut into P
   partitions of about equal tokens (a node's place: the tokens of the nodes before it in the
   order, times P over all tokens); a node's row in its partition is its place in that order, so
   a community's rows are next to each other.

Everything is a function of the walks, the seed and P: the same embeddings whatever the
partitioning of the walks or the number of executors.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_n2v import columns as C
from spark_n2v.frames import RANK_IN_ONE_TASK
from spark_n2v.streams import (SGNS_LAYOUT_TIE, TRAIN_LAYOUT_ORDER, TRAIN_LAYOUT_SEED,
                               TRAIN_LAYOUT_TIE, column_hash, column_uniform, id_hash,
                               uniforms)

MAX_NEIGHBOURS = 32  # a node hears its heaviest neighbours only: a hub's votes are its top ones
SEED_SHARE = 0.01    # nodes that start with a label of their own ...
SEEDS_PER_PARTITION = 8  # ... at least this many per partition on small graphs
ROUNDS = 30          # label propagation rounds at most (it stops once no label changes)
EDGES_IN_ONE_TASK = 10_000_000  # transitions one task propagates labels over (~1 GB of arrays)

_SCORE, _TIE, _KEY = "_score", "_tie", "_key"  # a candidate label's weight, tie-break, order key


def _pairs(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: walks (walk) -> (src, dst, weight) of consecutive visits, both ways,
    summed over the task's walks (a task holds its distinct transitions, not its pairs)."""
    summed = list(_batch_pairs(batches))
    if summed:
        total = pa.concat_tables(summed).group_by([C.SRC, C.DST]).aggregate([(C.WEIGHT, "sum")])
        yield from total.rename_columns([C.SRC, C.DST, C.WEIGHT]).to_batches()


def _batch_pairs(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    for batch in batches:
        walks = batch.column(0)
        values = pc.list_flatten(walks)
        if len(values) < 2:
            continue
        lengths = pc.list_value_length(walks).fill_null(0).to_numpy()
        last = np.cumsum(lengths) - 1  # a walk's last visit has no successor
        follows = np.ones(len(values), bool)
        follows[last[lengths > 0]] = False
        at = np.flatnonzero(follows[:-1])
        a, b = values.take(pa.array(at)), values.take(pa.array(at + 1))
        moved = pc.not_equal(a, b)
        a, b = a.filter(moved), b.filter(moved)
        table = pa.table({C.SRC: pa.concat_arrays([a, b]), C.DST: pa.concat_arrays([b, a])})
        summed = table.group_by([C.SRC, C.DST]).aggregate([([], "count_all")])
        yield summed.rename_columns([C.SRC, C.DST, C.WEIGHT])


def transitions(walks: DataFrame, seed: int) -> DataFrame:
    """walks (walk) -> (src, dst, weight long): consecutive visits both ways, each src's
    MAX_NEIGHBOURS heaviest dst (ties by a seeded hash)."""
    id_type = walks.schema[C.WALK].dataType.elementType
    schema = T.StructType([T.StructField(C.SRC, id_type), T.StructField(C.DST, id_type),
                           T.StructField(C.WEIGHT, T.LongType())])
    counted = (walks.select(C.WALK).mapInArrow(_pairs, schema)
               .groupBy(C.SRC, C.DST).agg(F.sum(C.WEIGHT).alias(C.WEIGHT)))
    heaviest = Window.partitionBy(C.SRC).orderBy(
        F.col(C.WEIGHT).desc(), column_hash(TRAIN_LAYOUT_TIE, C.DST, seed=seed))
    return (counted.withColumn(_KEY, F.row_number().over(heaviest))
            .where(F.col(_KEY) <= MAX_NEIGHBOURS).drop(_KEY))


def _tie(seed: int, r: int) -> int:
    """Round r's tie-break between labels of equal weight: label XOR this (a signed long), so
    that each round prefers other labels (computed alike in Spark and numpy)."""
    return int(uniforms(seed, r, 0, 0, SGNS_LAYOUT_TIE)[()] * (1 << 62)) - (1 << 61)


def _initial_labels(nodes: DataFrame, share: float, seed: int) -> DataFrame:
    """nodes (id, ...) -> with label: a hash of the id for `share` of them, else null."""
    seeded = column_uniform(TRAIN_LAYOUT_SEED, C.ID, seed=seed) < share
    return nodes.withColumn(C.LABEL, F.when(seeded, id_hash(C.ID)))


def _communities_in_spark(spark: SparkSession, edges: DataFrame, labels: DataFrame, seed: int,
                          folder: str, rounds: int) -> DataFrame:
    """Label propagation as DataFrame joins: labels (id, label or null) and edges (src, dst,
    weight) -> (id, label), written round by round under folder (each round reads the last
    one's files: a short plan). `edges` are scanned every round: cache them."""
    labels = labels.select(C.ID, C.LABEL)
    for r in range(rounds):
        heard = (edges.join(labels.where(F.col(C.LABEL).isNotNull())
                            .withColumnRenamed(C.ID, C.DST), C.DST)
                 .groupBy(C.SRC, C.LABEL).agg(F.sum(C.WEIGHT).alias(_SCORE))
                 .withColumn(_TIE, F.col(C.LABEL).bitwiseXOR(F.lit(_tie(seed, r))))
                 .groupBy(C.SRC)
                 .agg(F.max(F.struct(_SCORE, _TIE, C.LABEL)).getField(C.LABEL).alias("_heard"))
                 .withColumnRenamed(C.SRC, C.ID))
        path = f"{folder}/round={r}"
        (labels.join(heard, C.ID, "left")
         .select(C.ID, F.coalesce("_heard", C.LABEL).alias(C.LABEL),
                 (~F.col(C.LABEL).eqNullSafe(F.coalesce("_heard", C.LABEL))).alias("_changed"))
         .write.mode("overwrite").parquet(path))
        labels = spark.read.parquet(path)
        settled = labels.where("_changed").isEmpty()  # every later round would be the same
        labels = labels.drop("_changed")
        if settled:
            break
    return labels


def propagate(label: np.ndarray, has: np.ndarray, src: np.ndarray, dst: np.ndarray,
              weight: np.ndarray, seed: int, rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """Label propagation in numpy, as _communities_in_spark computes it: nodes 0..n-1 with a
    label where `has`; edges by node index. Returns (label, has)."""
    label, has = label.copy(), has.copy()
    for r in range(rounds):  # (a round that changes nothing ends it, as in Spark)
        heard = has[dst]
        s, lab, w = src[heard], label[dst[heard]], weight[heard]
        if not len(s):
            break
        order = np.lexsort((lab, s))
        s, lab, w = s[order], lab[order], w[order]
        first = np.flatnonzero(np.r_[True, (s[1:] != s[:-1]) | (lab[1:] != lab[:-1])])
        s, lab, score = s[first], lab[first], np.add.reduceat(w, first)
        # the best (score, tie, label) of each node: the last in that order
        best = np.lexsort((lab, lab ^ np.int64(_tie(seed, r)), score, s))
        last = best[np.r_[s[best][1:] != s[best][:-1], True]]
        settled = has[s[last]].all() and (label[s[last]] == lab[last]).all()
        label[s[last]], has[s[last]] = lab[last], True
        if settled:
            break
    return label, has


def _placed(P: int, table: pa.Table) -> pa.Table:
    """(id, count, key) in order -> with part and local: the cut by tokens, rows in order."""
    count = table.column(C.COUNT).to_numpy()
    before = np.cumsum(count) - count
    part = np.minimum(before * P // max(int(count.sum()), 1), P - 1).astype(np.int32)
    first = np.searchsorted(part, part, "left")  # (part rises along the order)
    return (table.append_column(C.PART, pa.array(part))
            .append_column(C.LOCAL, pa.array(np.arange(len(part)) - first)))


def chain(labels: np.ndarray, keys: np.ndarray, a: np.ndarray, b: np.ndarray, weight: np.ndarray
          ) -> np.ndarray:
    """Each community's place in the order: labels (unique) with their keys, and the transition
    weight between communities (a, b, weight: both ways, a != b). A chain: from the community of
    smallest key, each next is the one joined most strongly to the last (ties: smaller key) among
    those not placed yet, or, if the last has none, the unplaced one of smallest key; communities
    without a neighbour come after, by key. So a community that label propagation left in two
    pieces has its pieces side by side, and neighbouring partitions hold neighbouring
    communities."""
    n = len(labels)
    at = np.argsort(labels)
    ia, ib = (at[np.searchsorted(labels[at], x)] for x in (a, b))
    order = np.lexsort((keys[ib], -weight, ia))  # each community's neighbours, best first
    ia, ib = ia[order], ib[order]
    starts = np.searchsorted(ia, np.arange(n + 1))
    place = np.full(n, -1, np.int64)
    linked = np.flatnonzero(starts[1:] > starts[:-1])
    by_key = linked[np.argsort(keys[linked], kind="stable")]
    nxt, cursor, placed = 0, starts[:-1].copy(), 0  # cursor: first neighbour not yet skipped
    current = -1
    while placed < len(linked):
        if current < 0:
            while place[by_key[nxt]] >= 0:
                nxt += 1
            current = by_key[nxt]
        place[current] = placed
        placed += 1
        c, end = cursor[current], starts[current + 1]
        while c < end and place[ib[c]] >= 0:
            c += 1
        cursor[current] = c
        current = ib[c] if c < end else -1
    alone = np.flatnonzero(place < 0)
    place[alone[np.argsort(keys[alone], kind="stable")]] = placed + np.arange(len(alone))
    return place


def _chained(labels: pa.Table, between: pa.Table) -> pa.Table:
    """(label, key) of every community and (a, b, weight) between them -> (label, key: its place
    in the chain)."""
    place = chain(labels.column(C.LABEL).to_numpy(), labels.column(_KEY).to_numpy(),
                  between.column("a").to_numpy(), between.column("b").to_numpy(),
                  between.column(C.WEIGHT).to_numpy())
    return pa.table({C.LABEL: labels.column(C.LABEL), _KEY: pa.array(place)})


def _in_one_task(P: int, seed: int, rounds: int, nodes: pa.Table, edges: pa.Table) -> pa.Table:
    """cogroup body: every node (id, count, rank, label or null, _own: the hash of its id, _key0:
    the order key of that hash) and every edge (src, dst, weight) -> (id, count, rank, part,
    local), as the Spark path computes them."""
    src, dst = (pc.index_in(edges.column(name), value_set=nodes.column(C.ID)).to_numpy(
        zero_copy_only=False).astype(np.int64) for name in (C.SRC, C.DST))
    weight = edges.column(C.WEIGHT).to_numpy().astype(np.int64)
    labelled = nodes.column(C.LABEL)
    label, has = propagate(labelled.fill_null(0).to_numpy().astype(np.int64),
                           labelled.is_valid().to_numpy(zero_copy_only=False),
                           src, dst, weight, seed, rounds)
    own, own_key = nodes.column("_own").to_numpy(), nodes.column("_key0").to_numpy()
    label = np.where(has, label, own)  # no label: its own community, as its own seed would be
    # every label is some node's own hash: its key is that node's
    communities = np.unique(label)
    by_own = np.argsort(own, kind="stable")
    key = own_key[by_own[np.minimum(np.searchsorted(own[by_own], communities), len(own) - 1)]]
    a, b = label[src], label[dst]
    keep = a != b
    between = pa.table({"a": a[keep], "b": b[keep], C.WEIGHT: weight[keep]}).group_by(
        ["a", "b"]).aggregate([(C.WEIGHT, "sum")]).rename_columns(["a", "b", C.WEIGHT])
    placed = _chained(pa.table({C.LABEL: communities, _KEY: key}), between)
    where = np.searchsorted(communities, label)
    table = (nodes.select([C.ID, C.COUNT, C.RANK])
             .append_column(_KEY, placed.column(_KEY).take(pa.array(where))))
    table = table.take(pc.sort_indices(table, [(_KEY, "ascending"), (C.COUNT, "descending"),
                                              (C.ID, "ascending")]))
    return _placed(P, table).select([C.ID, C.COUNT, C.RANK, C.PART, C.LOCAL])


def _chain_in_spark(labels: DataFrame, edges: DataFrame, seed: int) -> DataFrame:
    """labels (id, label or null) and edges -> (id, key: its community's place in the chain)."""
    labels = labels.select(C.ID, F.coalesce(C.LABEL, id_hash(C.ID)).alias(C.LABEL))
    communities = labels.select(C.LABEL).distinct().withColumn(
        _KEY, column_hash(TRAIN_LAYOUT_ORDER, C.LABEL, seed=seed))
    between = (edges.join(labels.select(F.col(C.ID).alias(C.SRC), F.col(C.LABEL).alias("a")),
                          C.SRC)
               .join(labels.select(F.col(C.ID).alias(C.DST), F.col(C.LABEL).alias("b")), C.DST)
               .where(F.col("a") != F.col("b"))
               .groupBy("a", "b").agg(F.sum(C.WEIGHT).alias(C.WEIGHT)))
    schema = T.StructType([T.StructField(C.LABEL, T.LongType()), T.StructField(_KEY, T.LongType())])
    placed = (communities.withColumn("_one", F.lit(0)).groupBy("_one")
              .cogroup(between.withColumn("_one", F.lit(0)).groupBy("_one"))
              .applyInArrow(lambda c, b: _chained(c.select([C.LABEL, _KEY]),
                                                  b.select(["a", "b", C.WEIGHT])), schema))
    return labels.join(placed, C.LABEL).select(C.ID, _KEY)


def place(spark: SparkSession, ranked: DataFrame, walks: DataFrame, nodes: int, P: int,
          seed: int, folder: str, out: str, rounds: int = ROUNDS) -> None:
    """ranked (id, count, rank) and the walks -> out (id, count, rank, local; by part):
    communities by label propagation over the walks' transitions, chained, cut into P partitions
    of about equal tokens; `folder` holds the propagation's rounds. Up to RANK_IN_ONE_TASK nodes
    and EDGES_IN_ONE_TASK transitions, one task propagates and cuts (each round in Spark is a few
    jobs: seconds on a small graph); above, Spark does, with the same result (the chain is one
    task's either way: it is a table of communities)."""
    # cached in as many partitions as cores: every propagation round scans them (an aggregate's
    # 200 shuffle partitions would be 200 tasks a round)
    edges = transitions(walks, seed).coalesce(spark.sparkContext.defaultParallelism).persist(
        StorageLevel.MEMORY_AND_DISK)
    share = min(1.0, max(SEED_SHARE, SEEDS_PER_PARTITION * P / max(nodes, 1)))
    start = _initial_labels(ranked, share, seed)
    schema = T.StructType([ranked.schema[C.ID], T.StructField(C.COUNT, T.LongType()),
                           T.StructField(C.RANK, T.LongType()),
                           T.StructField(C.PART, T.IntegerType()),
                           T.StructField(C.LOCAL, T.LongType())])
    held = []  # what the Spark path caches
    if nodes <= RANK_IN_ONE_TASK and edges.count() <= EDGES_IN_ONE_TASK:
        placed = (start.withColumn("_own", id_hash(C.ID))
                  .withColumn("_key0", column_hash(TRAIN_LAYOUT_ORDER, "_own", seed=seed))
                  .withColumn("_one", F.lit(0)).groupBy("_one")
                  .cogroup(edges.withColumn("_one", F.lit(0)).groupBy("_one"))
                  .applyInArrow(lambda a, b: _in_one_task(P, seed, rounds, a, b), schema))
    else:
        labels = _communities_in_spark(spark, edges, start, seed, folder, rounds)
        keyed = ranked.join(_chain_in_spark(labels, edges, seed), C.ID).select(
            C.ID, C.COUNT, C.RANK, _KEY)
        placed, ranged = _layout_by_ranges(spark, keyed, P)
        held.append(ranged)
    placed.write.mode("overwrite").partitionBy(C.PART).parquet(out)
    for cached in [edges, *held]:
        cached.unpersist()


def _layout_by_ranges(spark: SparkSession, keyed: DataFrame, P: int
                      ) -> tuple[DataFrame, DataFrame]:
    """The cut of a table too large for one task: range-partitioned by the order, each range's
    tokens summed (one row per range), and each node's tokens before it: the tokens of the ranges
    before plus its running sum in its range. Returns (the placed rows, the ranges: cached, for
    the caller to release once they are written)."""
    order = [F.col(_KEY), F.col(C.COUNT).desc(), F.col(C.ID)]
    ranged = (keyed.repartitionByRange(spark.sparkContext.defaultParallelism * 4, *order)
              .withColumn("_range", F.spark_partition_id())
              .persist(StorageLevel.MEMORY_AND_DISK))
    sums = dict(ranged.groupBy("_range").agg(F.sum(C.COUNT)).collect())  # one row per range
    offsets, total = [], 0
    for r in sorted(sums):
        offsets += [F.lit(r), F.lit(total)]
        total += sums[r]
    offset = F.element_at(F.create_map(*offsets), F.col("_range"))
    running = F.sum(C.COUNT).over(Window.partitionBy("_range").orderBy(*order)
                                  .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    # integer division, as the one-task path divides
    placed = (ranged.withColumn("_before", offset + running - F.col(C.COUNT))
              .withColumn(C.PART, F.least(F.expr(f"(_before * {P}) div {max(total, 1)}"),
                                          F.lit(P - 1)).cast("int")))
    local = F.row_number().over(Window.partitionBy(C.PART).orderBy(*order)) - 1
    return (placed.select(C.ID, C.COUNT, C.RANK, C.PART, local.cast("long").alias(C.LOCAL)),
            ranged)
