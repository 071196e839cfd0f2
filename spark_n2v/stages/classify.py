"""`spark-n2v classify`: node classification on the embeddings, MLlib logistic regression on a
stratified split.

Labels are (id, label) rows; an id with several labels makes the task multi-label, trained one
versus rest (one binary model per label) and scored as DeepWalk and node2vec score it: each test
node is predicted its k most probable labels, k being its number of true labels.

The split is stratified and seeded: within each class (a multi-label node's smallest label), nodes
are ordered by a hash of (seed, id) and the first `train_fraction` of them train, so the split does
not depend on partitioning; a class of two or more nodes has nodes on both sides.
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
from spark_n2v.errors import UserError
from spark_n2v.frames import split_counts
from spark_n2v.io.tables import read_embeddings, read_labels, shown
from spark_n2v.progress import describe
from spark_n2v.stages.stage import EMBEDDINGS_INPUT, LABELS_INPUT, Context, Stage

log = logging.getLogger(__name__)

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
    grouped = labels.groupBy(C.ID).agg(F.array_sort(F.collect_set(C.LABEL)).alias(C.LABELS))
    with_vectors = grouped.join(embeddings.select(C.ID, C.EMBEDDING), C.ID, "inner")
    stats = grouped.agg(F.count("*").alias("ids"),
                        F.max(F.size(C.LABELS)).alias("most")).first()
    kept = with_vectors.count()
    classes = sorted(r[0] for r in labels.select(C.LABEL).distinct().collect())  # classes: small
    strata = Window.partitionBy("_stratum").orderBy(
        streams.column_hash(streams.CLASSIFY_SPLIT, C.ID, seed=seed), C.ID)
    ranked = (with_vectors.withColumn("_stratum", F.col(C.LABELS)[0])
              .withColumn("_n", F.count("*").over(Window.partitionBy("_stratum")))
              .withColumn("_k", F.row_number().over(strata)))
    # train the first round(fraction x n) of a class, but at least 1 and at most n - 1 when n >= 2
    cut = F.least(F.greatest(F.round(F.col("_n") * train_fraction), F.lit(1)),
                  F.greatest(F.col("_n") - 1, F.lit(1)))
    nodes = ranked.select(C.ID, C.LABELS, array_to_vector(C.EMBEDDING).alias(C.FEATURES),
                          F.when(F.col("_k") <= cut, C.TRAIN).otherwise(C.TEST).alias(C.SPLIT))
    return LabelledNodes(nodes, classes, (stats["most"] or 0) > 1, stats["ids"] - kept)


def _fit(train: DataFrame, label: F.Column, family: str) -> object:
    return (LogisticRegression(maxIter=MAX_ITER, family=family, featuresCol=C.FEATURES,
                               labelCol="y")
            .fit(train.withColumn("y", label)))


def predict(data: LabelledNodes) -> DataFrame:
    """(id, labels, predicted array<string>, split) for every node, train and test."""
    nodes, classes = data.nodes.cache(), data.classes
    train = nodes.where(F.col(C.SPLIT) == C.TRAIN)
    index = F.create_map(*[x for i, c in enumerate(classes) for x in (F.lit(c), F.lit(float(i)))])
    if not data.multi_label:
        model = _fit(train, index[F.col(C.LABELS)[0]], "multinomial")
        names = F.array(*[F.lit(c) for c in classes])
        best = F.element_at(names, F.col("prediction").cast("int") + 1)  # prediction: class index
        return model.transform(nodes).select(C.ID, C.LABELS, F.array(best).alias(C.PREDICTED),
                                             C.SPLIT)
    # one versus rest: a binary model per label, then each node's top-k labels by probability
    scores = []
    for i, c in enumerate(classes):
        model = _fit(train, F.array_contains(C.LABELS, c).cast("double"), "binomial")
        scores.append(model.transform(nodes)
                      .select(C.ID, F.struct(vector_to_array("probability")[1].alias("p"),
                                             F.lit(c).alias("c")).alias("s")))
    merged = scores[0]
    for s in scores[1:]:
        merged = merged.unionByName(s)
    ranked = merged.groupBy(C.ID).agg(F.sort_array(F.collect_list("s"), asc=False).alias("s"))
    return (nodes.join(ranked, C.ID)
            .select(C.ID, C.LABELS,
                    F.array_sort(F.slice(F.col("s.c"), 1, F.size(C.LABELS))).alias(C.PREDICTED),
                    C.SPLIT))


def f1_metrics(predictions: DataFrame, classes: list[str]) -> dict:
    """Test-split metrics from (labels, predicted) arrays: per class precision/recall/F1/support,
    macro-F1 (mean over classes with test support or predictions), micro-F1 and accuracy (the
    predicted set equals the true set)."""
    test = predictions.where(F.col(C.SPLIT) == C.TEST)
    per_label = (test.select(F.explode(C.LABELS).alias("c"),
                             F.array_contains(C.PREDICTED, F.col("c")).alias("hit"))
                 .groupBy("c").agg(F.count("*").alias("support"),
                                   F.sum(F.col("hit").cast("int")).alias("tp")))
    predicted = (test.select(F.explode(C.PREDICTED).alias("c")).groupBy("c")
                 .agg(F.count("*").alias(C.PREDICTED)))
    rows = per_label.join(predicted, "c", "full_outer").collect()  # one row per class
    exact = test.agg(F.count("*").alias("n"),
                     F.sum((F.col(C.LABELS) == F.col(C.PREDICTED)).cast("int")).alias("ok")).first()
    return f1_from_counts({r["c"]: (r["tp"] or 0, r["support"] or 0, r[C.PREDICTED] or 0)
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


def predictions_table(predicted: DataFrame, multi_label: bool) -> DataFrame:
    """predict()'s rows -> the predictions table (id, label, prediction, split): strings, or
    arrays of strings when the task is multi-label."""
    if multi_label:
        return predicted.select(C.ID, F.col(C.LABELS).alias(C.LABEL),
                                F.col(C.PREDICTED).alias(C.PREDICTION), C.SPLIT)
    return predicted.select(C.ID, F.col(C.LABELS)[0].alias(C.LABEL),
                            F.col(C.PREDICTED)[0].alias(C.PREDICTION), C.SPLIT)


def label_sets(table: DataFrame, multi_label: bool) -> DataFrame:
    """The predictions table -> (split, labels, predicted) arrays, f1_metrics' input."""
    if multi_label:
        return table.select(C.SPLIT, F.col(C.LABEL).alias(C.LABELS),
                            F.col(C.PREDICTION).alias(C.PREDICTED))
    return table.select(C.SPLIT, F.array(C.LABEL).alias(C.LABELS),
                        F.array(C.PREDICTION).alias(C.PREDICTED))


# --- the stage ----------------------------------------------------------------------------------

def _run(ctx: Context) -> None:
    """embeddings + labels -> DIR/predictions and DIR/metrics.json."""
    spark, cfg, record = ctx.spark, ctx.configs["classify"], ctx.record
    labels_input = ctx.inputs["labels"]
    with record.timed("classify"):
        describe(spark, "spark-n2v classify: labels and split")
        emb, _, _ = read_embeddings(spark, ctx.inputs["embeddings"])
        labels = read_labels(spark, labels_input, emb.schema[C.ID].dataType)
        data = split_nodes(labels, emb, cfg.train_fraction, cfg.seed)
        if len(data.classes) < 2:
            raise UserError("{labels} {path}: classification needs at least 2 labels, found "
                            "{found}", path=shown(labels_input), found=len(data.classes))
        if data.without_embedding:
            log.warning("classify: %d labelled ids have no embedding; they are left out and "
                        "counted in metrics.json", data.without_embedding)
        describe(spark, "spark-n2v classify: logistic regression")
        predictions_dir = ctx.out.sub("predictions")
        predictions_table(predict(data), data.multi_label).write.mode("overwrite") \
            .parquet(predictions_dir)
        written = spark.read.parquet(predictions_dir)
        metrics = f1_metrics(label_sets(written, data.multi_label), data.classes)
        split = split_counts(written)
        metrics["counts"] = {"train": split[C.TRAIN], "test": split[C.TEST],
                             "classes": len(data.classes),
                             "labelled_without_embedding": data.without_embedding}
        metrics["multi_label"] = data.multi_label
        ctx.out.write_json("metrics.json", metrics)
    record.quality.update({k: round(metrics[k], 4) for k in ("macro_f1", "micro_f1", "accuracy")})
    record.counts.update(metrics["counts"])
    log.info("classify: macro-F1 %.4f, micro-F1 %.4f on %d test nodes in %.1f s",
             metrics["macro_f1"], metrics["micro_f1"], metrics["counts"]["test"],
             record.seconds["classify"])


STAGE = Stage("classify", "embeddings + labels -> DIR/predictions (id, label, prediction, split) "
              "and DIR/metrics.json: logistic regression on a stratified split", _run,
              configs=("classify",),
              inputs=(EMBEDDINGS_INPUT, LABELS_INPUT))
