"""Link prediction: hold out edges, embed the rest, tell held-out edges from as many non-edges.

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

from dataclasses import dataclass

from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import Window
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.errors import UserError
from spark_n2v.graph import rank_rows

U, V = "u", "v"
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


def _hash(seed: int, salt: int) -> F.Column:
    return F.xxhash64(F.col(U), F.col(V), F.lit(seed), F.lit(salt))


def _uniform(h: F.Column) -> F.Column:
    return F.pmod(h, F.lit(1 << 30)) / float(1 << 30)


def split_edges(edges: DataFrame, directed: bool, test_fraction: float, seed: int) -> EdgeSplit:
    """edges (src, dst, weight) -> training rows and held-out edges; every node keeps an edge."""
    edges = edges.where(F.col(C.SRC) != F.col(C.DST))
    keys = _with_key(edges, directed).select(U, V).distinct().withColumn("h", _hash(seed, 1)).cache()
    total = keys.count()
    incident = (keys.select(F.col(U).alias("node"), U, V, "h")
                .unionByName(keys.select(F.col(V).alias("node"), U, V, "h")))
    first = Window.partitionBy("node").orderBy("h", U, V)
    kept = (incident.withColumn("k", F.row_number().over(first)).where("k = 1")
            .select(U, V).distinct())
    candidates = keys.join(kept, [U, V], "left_anti")
    available = candidates.count()
    wanted = round(test_fraction * total)
    if wanted == 0:
        raise UserError(f"--test-fraction {test_fraction} of {total} edges holds out no edge; "
                        "raise it or use a larger graph")
    if wanted > available:
        raise UserError(f"--test-fraction {test_fraction} asks for {wanted} held-out edges, but "
                        f"only {available} of the {total} edges can be held out while every node "
                        "keeps one; lower --test-fraction")
    share = wanted / available if available else 0.0
    test = candidates.where(_uniform(_hash(seed, 2)) < share).select(U, V).cache()
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
    for attempt, oversample in enumerate((2, 4, 16)):
        draws = (edges.sparkSession.range(oversample * count + 100)
                 .select(F.col("id").alias("i"),
                         F.pmod(F.xxhash64("id", F.lit(seed), F.lit(10 + attempt)), n).alias("a"),
                         F.pmod(F.xxhash64("id", F.lit(seed), F.lit(20 + attempt)), n).alias("b"))
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
        ranked, have = rank_rows(pairs, [F.col("i")], "draw", partitions)
        if have >= count:
            found = ranked.where(F.col("draw") < count).select(U, V, "draw")
            break
    if found is None:
        raise UserError(f"could not draw {count} node pairs that are not edges: the graph is "
                        "too dense for link prediction; lower --test-fraction")
    return found


def hadamard(pairs: DataFrame, embeddings: DataFrame) -> DataFrame:
    """pairs (u, v, ...) -> with `features`, the element-wise product of the two embeddings."""
    a = embeddings.select(F.col(C.ID).alias(U), F.col(C.EMBEDDING).alias("eu"))
    b = embeddings.select(F.col(C.ID).alias(V), F.col(C.EMBEDDING).alias("ev"))
    return (pairs.join(a, U).join(b, V)
            .withColumn("features", array_to_vector(F.zip_with("eu", "ev", lambda x, y: x * y)))
            .drop("eu", "ev"))


def fit_and_score(train: DataFrame, test: DataFrame) -> DataFrame:
    """Logistic regression on train (features, label) -> test with `score` (probability of 1)."""
    model = LogisticRegression(maxIter=MAX_ITER, featuresCol="features", labelCol="label").fit(train)
    return model.transform(test).withColumn("score", vector_to_array("probability")[1])


def ranking_metrics(scored: DataFrame, partitions: int) -> dict:
    """ROC AUC and average precision of (u, v, label 0/1, score), exactly, from ranks.

    With pairs ranked by score (descending; ties by the pair), a positive at overall rank r that is
    the p-th positive has precision p / r there: average precision is their mean. ROC AUC is the
    share of (positive, negative) pairs ranked in the right order: a positive at rank r is above
    (T - r) - (P - p) negatives."""
    order = [F.col("score").desc(), F.col(U), F.col(V)]
    ranked, total = rank_rows(scored.select(U, V, "label", "score"), order, "r", partitions)
    positives = ranked.where("label = 1")
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
