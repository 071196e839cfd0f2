"""`spark-n2v linkpred`: hold out edges, embed the rest, tell held-out edges from as many non-edges.

1. Split: each distinct edge (an unordered pair when undirected) gets a hash of (seed, u, v).
   Every node's incident edge with the smallest hash is kept for training, so every node keeps at
   least one edge (and so a walk and an embedding); of the other edges, a seeded `test_fraction` of
   all edges is held out.
2. The caller embeds the training edges with the usual walk and train stages.
3. Pairs: positives are the held-out edges (test) and as many training edges (to fit the
   classifier); negatives are node pairs drawn uniformly (seeded) that are not edges of the whole
   graph, as many as the positives of each side. Features: the Hadamard product of the two
   embeddings (node2vec's best operator). MLlib logistic regression fits the train pairs.
4. Scores: ROC AUC and average precision on the test pairs, both computed exactly from ranks
   (ties broken by the pair), in Spark.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v import streams
from spark_n2v.columns import U, V
from spark_n2v.errors import UserError
from spark_n2v.frames import rank_rows, split_counts
from spark_n2v.io.edges import EdgeSource, EdgeTable
from spark_n2v.progress import describe
from spark_n2v.stages.stage import Context, Stage
from spark_n2v.stages.train import train_walks
from spark_n2v.stages.walk import walk_edges

log = logging.getLogger(__name__)

MAX_ITER = 200


@dataclass(frozen=True)
class EdgeSplit:
    train: DataFrame   # rows of the input table (src, dst, weight) whose edge is not held out
    test: DataFrame    # held-out edges (u, v)
    edges: DataFrame   # every distinct edge (u, v), cached
    held_out: int
    total: int


def _with_key(edges: DataFrame, directed: bool) -> DataFrame:
    """Rows with their edge (u, v): ordered when directed, (smaller, larger) when not."""
    if directed:
        return edges.withColumn(U, F.col(C.SRC)).withColumn(V, F.col(C.DST))
    return (edges.withColumn(U, F.least(C.SRC, C.DST))
            .withColumn(V, F.greatest(C.SRC, C.DST)))


def split_edges(edges: DataFrame, directed: bool, test_fraction: float, seed: int) -> EdgeSplit:
    """edges (src, dst, weight) -> training rows and held-out edges; every node keeps an edge."""
    edges = edges.where(F.col(C.SRC) != F.col(C.DST))
    keys = (_with_key(edges, directed).select(U, V).distinct()
            .withColumn("_h", streams.column_hash(streams.LINKPRED_KEEP, U, V, seed=seed)).cache())
    total = keys.count()
    incident = (keys.select(F.col(U).alias("_node"), U, V, "_h")
                .unionByName(keys.select(F.col(V).alias("_node"), U, V, "_h")))
    first = Window.partitionBy("_node").orderBy("_h", U, V)
    kept = (incident.withColumn("_k", F.row_number().over(first)).where("_k = 1")
            .select(U, V).distinct())
    candidates = keys.join(kept, [U, V], "left_anti")
    available = candidates.count()
    wanted = round(test_fraction * total)
    if wanted == 0:
        raise UserError("{linkpred.test_fraction} {fraction} of {total} edges holds out no edge; "
                        "raise it or use a larger graph", fraction=test_fraction, total=total)
    if wanted > available:
        raise UserError("{linkpred.test_fraction} {fraction} asks for {wanted} held-out edges, "
                        "but only {available} of the {total} edges can be held out while every "
                        "node keeps one; lower {linkpred.test_fraction}", fraction=test_fraction,
                        wanted=wanted, available=available, total=total)
    share = wanted / available if available else 0.0
    held = streams.column_uniform(streams.LINKPRED_HOLD_OUT, U, V, seed=seed)
    test = candidates.where(held < share).select(U, V).cache()
    held_out = test.count()
    train = (_with_key(edges, directed).join(test, [U, V], "left_anti")
             .select(C.SRC, C.DST, C.WEIGHT))
    return EdgeSplit(train, test, keys.select(U, V), held_out, total)


def non_edges(edges: DataFrame, count: int, directed: bool, seed: int, partitions: int
              ) -> DataFrame:
    """`count` distinct node pairs (u, v) that are not edges, drawn uniformly with the seed, with a
    0-based `draw` order (so callers can split them)."""
    nodes = edges.select(F.col(U).alias(C.ID)).union(edges.select(F.col(V).alias(C.ID))).distinct()
    indexed, n = rank_rows(nodes, [F.col(C.ID)], "k", partitions)
    if n < 2:
        raise UserError("link prediction needs at least 2 nodes")
    found = None
    for attempt, oversample in zip(range(streams.NON_EDGE_ATTEMPTS), (2, 4, 16)):
        first = streams.column_hash(streams.LINKPRED_NON_EDGE_U + attempt, "id", seed=seed)
        second = streams.column_hash(streams.LINKPRED_NON_EDGE_V + attempt, "id", seed=seed)
        draws = (edges.sparkSession.range(oversample * count + 100)
                 .select(F.col("id").alias("i"), F.pmod(first, n).alias("a"),
                         F.pmod(second, n).alias("b"))
                 .where("a != b"))
        a = indexed.select(F.col("k").alias("a"), F.col(C.ID).alias("id_a"))
        b = indexed.select(F.col("k").alias("b"), F.col(C.ID).alias("id_b"))
        pairs = draws.join(a, "a").join(b, "b")
        if directed:
            pairs = pairs.select("i", F.col("id_a").alias(U), F.col("id_b").alias(V))
        else:
            pairs = pairs.select("i", F.least("id_a", "id_b").alias(U),
                                 F.greatest("id_a", "id_b").alias(V))
        pairs = (pairs.join(edges, [U, V], "left_anti")
                 .groupBy(U, V).agg(F.min("i").alias("i")))
        ranked, have = rank_rows(pairs, [F.col("i")], C.DRAW, partitions)
        if have >= count:
            found = ranked.where(F.col(C.DRAW) < count).select(U, V, C.DRAW)
            break
    if found is None:
        raise UserError("could not draw {count} node pairs that are not edges: the graph is too "
                        "dense for link prediction; lower {linkpred.test_fraction}", count=count)
    return found


def hadamard(pairs: DataFrame, embeddings: DataFrame) -> DataFrame:
    """pairs (u, v, ...) -> with `features`, the element-wise product of the two embeddings."""
    a = embeddings.select(F.col(C.ID).alias(U), F.col(C.EMBEDDING).alias("eu"))
    b = embeddings.select(F.col(C.ID).alias(V), F.col(C.EMBEDDING).alias("ev"))
    return (pairs.join(a, U).join(b, V)
            .withColumn(C.FEATURES, array_to_vector(F.zip_with("eu", "ev", lambda x, y: x * y)))
            .drop("eu", "ev"))


def fit_and_score(train: DataFrame, test: DataFrame) -> DataFrame:
    """Logistic regression on train (features, label) -> test with `score` (probability of 1)."""
    model = LogisticRegression(maxIter=MAX_ITER, featuresCol=C.FEATURES,
                               labelCol=C.LABEL).fit(train)
    return model.transform(test).withColumn(C.SCORE, vector_to_array("probability")[1])


def ranking_metrics(scored: DataFrame, partitions: int) -> dict:
    """ROC AUC and average precision of (u, v, label 0/1, score), exactly, from ranks.

    With pairs ranked by score (descending; ties by the pair), a positive at overall rank r that is
    the p-th positive has precision p / r there: average precision is their mean. ROC AUC is the
    share of (positive, negative) pairs ranked in the right order: a positive at rank r is above
    (T - r) - (P - p) negatives."""
    order = [F.col(C.SCORE).desc(), F.col(U), F.col(V)]
    ranked, total = rank_rows(scored.select(U, V, C.LABEL, C.SCORE), order, "r", partitions)
    positives = ranked.where(F.col(C.LABEL) == 1)
    pos_ranked, P = rank_rows(positives, order, "p", partitions)
    N = total - P
    if P == 0 or N == 0:
        raise UserError("link prediction needs both held-out edges and non-edges to score")
    sums = pos_ranked.agg(F.sum((F.col("p") + 1) / (F.col("r") + 1)).alias("ap"),
                          F.sum(F.lit(total) - (F.col("r") + 1) - (F.lit(P) - (F.col("p") + 1)))
                          .alias("right")).first()
    ranked.unpersist()
    pos_ranked.unpersist()
    return {"roc_auc": float(sums["right"]) / (P * N), "average_precision": float(sums["ap"]) / P,
            "positives": P, "negatives": N}


def labelled_pairs(split: EdgeSplit, directed: bool, seed: int, partitions: int) -> DataFrame:
    """(u, v, label, split): the held-out edges (test, label 1), as many kept edges (train, label
    1), and twice as many non-edges (label 0), half of them train and half test."""
    n = split.held_out
    negatives = non_edges(split.edges, 2 * n, directed, seed, partitions)
    kept, _ = rank_rows(split.edges.join(split.test, [U, V], "left_anti")
                        .withColumn("_h", streams.column_hash(streams.LINKPRED_TRAIN_EDGES, U, V,
                                                              seed=seed)),
                        [F.col("_h"), F.col(U), F.col(V)], C.DRAW, partitions)
    return (split.test.withColumn(C.LABEL, F.lit(1.0)).withColumn(C.SPLIT, F.lit(C.TEST))
            .unionByName(kept.where(F.col(C.DRAW) < n).select(U, V)
                         .withColumn(C.LABEL, F.lit(1.0)).withColumn(C.SPLIT, F.lit(C.TRAIN)))
            .unionByName(negatives.select(U, V, F.lit(0.0).alias(C.LABEL),
                                          F.when(F.col(C.DRAW) < n, C.TEST).otherwise(C.TRAIN)
                                          .alias(C.SPLIT))))


# --- the stage ----------------------------------------------------------------------------------

def _run(ctx: Context) -> None:
    """edges -> DIR/metrics.json; the walks and embeddings of the kept edges stay in the work
    folder (deleted with it)."""
    spark, cfg, record, work = ctx.spark, ctx.configs["linkpred"], ctx.record, ctx.out.work
    edges = ctx.edges
    with record.timed("split"):
        describe(spark, "spark-n2v linkpred: read edges, hold out a share")
        split = split_edges(edges.read(spark).edges, edges.cfg.directed, cfg.test_fraction,
                            cfg.seed)
        train_rows = split.train.cache()
        log.info("linkpred: %d of %d edges held out", split.held_out, split.total)
    kept = EdgeSource(edges.cfg, table=EdgeTable(train_rows, train_rows.count(), 0))
    walk_edges(spark, kept, ctx.configs["walk"], f"{work}/walks", f"{work}/walk", record)
    train_walks(spark, f"{work}/walks", ctx.configs["train"], f"{work}/embeddings",
                f"{work}/train", record)
    with record.timed("linkpred"):
        describe(spark, "spark-n2v linkpred: pairs, features, logistic regression")
        parts = spark.sparkContext.defaultParallelism
        pairs = labelled_pairs(split, edges.cfg.directed, cfg.seed, parts)
        featured = hadamard(pairs, spark.read.parquet(f"{work}/embeddings")).cache()
        counted = split_counts(featured)
        scored = fit_and_score(featured.where(F.col(C.SPLIT) == C.TRAIN),
                               featured.where(F.col(C.SPLIT) == C.TEST))
        metrics = ranking_metrics(scored, parts)
        featured.unpersist()
        train_rows.unpersist()
        n = split.held_out
        metrics["counts"] = {"edges": split.total, "held_out": n,
                             "train_pairs": counted[C.TRAIN], "test_pairs": counted[C.TEST],
                             "pairs_without_embedding": 4 * n - sum(counted.values())}
        ctx.out.write_json("metrics.json", metrics)
    record.quality.update({k: round(metrics[k], 4) for k in ("roc_auc", "average_precision")})
    record.counts.update(metrics["counts"])
    log.info("linkpred: ROC AUC %.4f, average precision %.4f on %d test pairs",
             metrics["roc_auc"], metrics["average_precision"], counted[C.TEST])


STAGE = Stage("linkpred", "edges -> DIR/metrics.json: hold out edges, embed the rest, ROC AUC and "
              "average precision of held-out edges against as many non-edges", _run,
              configs=("input", "walk", "train", "linkpred"))
