"""Node classification on the embeddings: MLlib logistic regression on a stratified split.

Labels are (id, label) rows; an id with several labels makes the task multi-label, trained one
versus rest (one binary model per label) and scored as DeepWalk and node2vec score it: each test
node is predicted its k most probable labels, k being its number of true labels.

The split is stratified and seeded: within each class (a multi-label node's smallest label), nodes
are ordered by a hash of (seed, id) and the first `train_fraction` of them train, so the split does
not depend on partitioning; a class of two or more nodes has nodes on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark_n2v import columns as C

TRAIN, TEST = "train", "test"
MAX_ITER = 200


@dataclass(frozen=True)
class LabelledNodes:
    """Labels joined to embeddings: `nodes` (id, labels array<string>, features, split)."""

    nodes: DataFrame
    classes: list[str]       # sorted
    multi_label: bool
    without_embedding: int   # labelled ids that have no embedding (reported, not trained)


def split_nodes(labels: DataFrame, embeddings: DataFrame, train_fraction: float, seed: int
                ) -> LabelledNodes:
    """labels (id, label string) + embeddings (id, embedding) -> nodes with their split."""
    grouped = labels.groupBy(C.ID).agg(F.array_sort(F.collect_set(C.LABEL)).alias("labels"))
    with_vectors = grouped.join(embeddings.select(C.ID, C.EMBEDDING), C.ID, "inner")
    stats = grouped.agg(F.count("*").alias("ids"),
                        F.max(F.size("labels")).alias("most")).first()
    kept = with_vectors.count()
    classes = sorted(r[0] for r in labels.select(C.LABEL).distinct().collect())  # classes: small
    strata = Window.partitionBy("stratum").orderBy(F.xxhash64(C.ID, F.lit(seed)), C.ID)
    ranked = (with_vectors.withColumn("stratum", F.col("labels")[0])
              .withColumn("n", F.count("*").over(Window.partitionBy("stratum")))
              .withColumn("k", F.row_number().over(strata)))
    # train the first round(fraction x n) of a class, but at least 1 and at most n - 1 when n >= 2
    cut = F.least(F.greatest(F.round(F.col("n") * train_fraction), F.lit(1)),
                  F.greatest(F.col("n") - 1, F.lit(1)))
    nodes = ranked.select(C.ID, "labels", array_to_vector(C.EMBEDDING).alias("features"),
                          F.when(F.col("k") <= cut, TRAIN).otherwise(TEST).alias(C.SPLIT))
    return LabelledNodes(nodes, classes, (stats["most"] or 0) > 1, stats["ids"] - kept)


def _fit(train: DataFrame, label: F.Column, family: str) -> object:
    return (LogisticRegression(maxIter=MAX_ITER, family=family, featuresCol="features",
                               labelCol="y")
            .fit(train.withColumn("y", label)))


def predict(data: LabelledNodes) -> DataFrame:
    """(id, labels, predicted array<string>, split) for every node, train and test."""
    nodes, classes = data.nodes.cache(), data.classes
    train = nodes.where(F.col(C.SPLIT) == TRAIN)
    index = F.create_map(*[x for i, c in enumerate(classes) for x in (F.lit(c), F.lit(float(i)))])
    if not data.multi_label:
        model = _fit(train, index[F.col("labels")[0]], "multinomial")
        names = F.array(*[F.lit(c) for c in classes])
        best = F.element_at(names, F.col("prediction").cast("int") + 1)  # prediction: class index
        return model.transform(nodes).select(C.ID, "labels", F.array(best).alias("predicted"),
                                             C.SPLIT)
    # one versus rest: a binary model per label, then each node's top-k labels by probability
    scores = []
    for i, c in enumerate(classes):
        model = _fit(train, F.array_contains("labels", c).cast("double"), "binomial")
        scores.append(model.transform(nodes)
                      .select(C.ID, F.struct(vector_to_array("probability")[1].alias("p"),
                                             F.lit(c).alias("c")).alias("s")))
    merged = scores[0]
    for s in scores[1:]:
        merged = merged.unionByName(s)
    ranked = merged.groupBy(C.ID).agg(F.sort_array(F.collect_list("s"), asc=False).alias("s"))
    return (nodes.join(ranked, C.ID)
            .select(C.ID, "labels",
                    F.array_sort(F.slice(F.col("s.c"), 1, F.size("labels"))).alias("predicted"),
                    C.SPLIT))


def f1_metrics(predictions: DataFrame, classes: list[str]) -> dict:
    """Test-split metrics from (labels, predicted) arrays: per class precision/recall/F1/support,
    macro-F1 (mean over classes with test support or predictions), micro-F1 and accuracy (the
    predicted set equals the true set)."""
    test = predictions.where(F.col(C.SPLIT) == TEST)
    per_label = (test.select(F.explode("labels").alias("c"),
                             F.array_contains("predicted", F.col("c")).alias("hit"))
                 .groupBy("c").agg(F.count("*").alias("support"),
                                   F.sum(F.col("hit").cast("int")).alias("tp")))
    predicted = (test.select(F.explode("predicted").alias("c")).groupBy("c")
                 .agg(F.count("*").alias("predicted")))
    rows = per_label.join(predicted, "c", "full_outer").collect()  # one row per class
    exact = test.agg(F.count("*").alias("n"),
                     F.sum((F.col("labels") == F.col("predicted")).cast("int")).alias("ok")).first()
    return f1_from_counts({r["c"]: (r["tp"] or 0, r["support"] or 0, r["predicted"] or 0)
                           for r in rows}, classes, exact["n"], exact["ok"] or 0)


def f1_from_counts(counts: dict[str, tuple[int, int, int]], classes: list[str], tested: int,
                   exact: int) -> dict:
    """counts: class -> (true positives, support, predicted)."""
    per_class, f1s = {}, []
    total_tp = total_support = total_predicted = 0
    for c in classes:
        tp, support, predicted = counts.get(c, (0, 0, 0))
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if support or predicted:
            f1s.append(f1)
        total_tp, total_support, total_predicted = (total_tp + tp, total_support + support,
                                                    total_predicted + predicted)
    micro_p = total_tp / total_predicted if total_predicted else 0.0
    micro_r = total_tp / total_support if total_support else 0.0
    return {"macro_f1": sum(f1s) / len(f1s) if f1s else 0.0,
            "micro_f1": 2 * micro_p * micro_r / (micro_p + micro_r) if micro_p + micro_r else 0.0,
            "accuracy": exact / tested if tested else 0.0, "per_class": per_class}
