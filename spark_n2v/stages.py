"""The stages as library calls: what the CLI and the spark-submit jobs run.

Each stage reads its input, runs the pure transforms, and writes its table into the output folder it
is given (a staging folder: moving it into place is the caller's job, see io.OutputPath).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_n2v import __version__, classify, export, linkpred, local, similar
from spark_n2v import columns as C
from spark_n2v.config import (ClassifyConfig, EdgeInput, ExportConfig, LinkPredConfig, PlotConfig,
                              SimilarConfig, TrainConfig, TuneConfig, WalkConfig)
from spark_n2v.errors import UserError
from spark_n2v.graph import GraphStats, rank_rows
from spark_n2v.io import (EdgeLayout, EdgeTable, HadoopFiles, OutputPath, data_files, inspect_spark,
                          is_local, local_path, read_edges, read_parquet_table)
from spark_n2v.progress import walks_progress
from spark_n2v.sgns import train_sgns
from spark_n2v.train import train_word2vec
from spark_n2v.walk import default_partitions, engine_of, prepare_graph, walk

log = logging.getLogger(__name__)


@dataclass
class RunRecord:
    """What `_run.json` holds: parameters, graph statistics, time per stage, versions."""

    command: str
    parameters: dict = field(default_factory=dict)
    graph: dict | None = None
    seconds: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    engine: str | None = None  # the walk engine used: local or distributed
    quality: dict = field(default_factory=dict)  # measured quality (recall, F1, AUC)
    inputs: dict = field(default_factory=dict)  # input fingerprints by flag (io.HadoopFiles)

    def walk_part(self) -> dict:
        """What the walk stage recorded: kept with the walks, for a resumed `run`."""
        return {"graph": self.graph, "engine": self.engine, "seconds": dict(self.seconds),
                "counts": dict(self.counts)}

    def restore(self, part: dict) -> None:
        self.graph, self.engine = part["graph"], part["engine"]
        self.seconds.update(part["seconds"])
        self.counts.update(part["counts"])

    def as_dict(self, spark: SparkSession) -> dict:
        import numpy
        import pyarrow
        import pyspark
        return {**asdict(self), "versions": {
            "spark_n2v": __version__, "pyspark": pyspark.__version__, "spark": spark.version,
            "python": platform.python_version(), "numpy": numpy.__version__,
            "pyarrow": pyarrow.__version__}}


@contextlib.contextmanager
def staged_output(spark: SparkSession, path: str, overwrite: bool, command: str,
                  record: RunRecord) -> Iterator[OutputPath]:
    """The output folder of one command, resumable (io.OutputPath): yields it for the stages to
    fill; on success writes _run.json and moves it into place. Bad input (UserError) forgets the
    run; anything else (a lost executor, a kill) keeps the finished steps for a rerun."""
    # what a rerun must match to resume this run's work (JSON's view: tuples become lists)
    job = json.loads(json.dumps({"command": command, "parameters": record.parameters,
                                 "inputs": record.inputs}))
    out = OutputPath(spark, path, overwrite, job)
    started = time.perf_counter()
    try:
        yield out
    except UserError:
        out.abort()  # bad input: nothing to resume, and nothing half-written is left behind
        raise
    except BaseException:
        print(f"spark-n2v: the run stopped; its finished steps are kept in {out.work}: rerun the "
              "same command to resume (--overwrite with other parameters starts afresh)",
              file=sys.stderr)
        raise
    record.seconds["total"] = round(time.perf_counter() - started, 2)
    out.write_json("_run.json", record.as_dict(spark))
    out.commit()


def run_stages(spark: SparkSession, walk_into, train_cfg: TrainConfig, out: OutputPath,
               record: RunRecord) -> None:
    """`run`: walks into out/walks (walk_into(walks_dir, work_dir) runs the walk stage), then
    embeddings into out/embeddings. A resumed run keeps walks finished before the restart."""
    walked = out.stage_done("walk")
    if walked is None:
        walk_into(out.sub("walks"), out.work + "/walk")
        out.mark_stage("walk", record.walk_part())
    else:
        log.info("walk: done before the restart, kept (%s walks)",
                 f"{walked['counts']['walks']:,}")
        record.restore(walked)
    train_stage(spark, out.sub("walks"), "--walks", train_cfg, out.sub("embeddings"),
                out.work + "/train", record)


def walk_stage(spark: SparkSession, edges: EdgeInput, layout: EdgeLayout | None, cfg: WalkConfig,
               walks_dir: str, work_dir: str, record: RunRecord) -> GraphStats:
    """edges -> walks table at walks_dir."""
    started = time.perf_counter()
    spark.sparkContext.setJobDescription("spark-n2v prepare: read and check edges")
    layout = layout or inspect_spark(spark, edges)
    table = read_edges(spark, edges, layout)
    return walk_edges(spark, table, edges, cfg, walks_dir, work_dir, record, started)


def walk_edges(spark: SparkSession, table: EdgeTable, edges: EdgeInput, cfg: WalkConfig,
               walks_dir: str, work_dir: str, record: RunRecord,
               started: float | None = None) -> GraphStats:
    """Edges already read (or derived, as linkpred's training edges) -> walks table at walks_dir.
    `started`: when reading began, so that the prepare time includes it."""
    graph = prepare_edges(spark, table, edges, cfg, record,
                          time.perf_counter() if started is None else started)
    walk_graph(spark, graph, cfg, walks_dir, work_dir, record)
    graph.release()
    return graph.stats


def prepare_edges(spark: SparkSession, table: EdgeTable, edges: EdgeInput, cfg: WalkConfig,
                  record: RunRecord, started: float):
    """Edges read -> the prepared graph of the engine that fits, recorded in `record`."""
    spark.sparkContext.setJobDescription("spark-n2v prepare: index nodes, build adjacency")
    graph = prepare_graph(table, edges, cfg, default_partitions(spark, cfg))
    record.graph = graph.stats.as_dict()
    record.engine = engine_of(graph)
    record.seconds["prepare"] = round(time.perf_counter() - started, 2)
    log.info("prepare: %s nodes, %s edges in %.1f s (%s engine)", graph.stats.nodes,
             graph.stats.edges, record.seconds["prepare"], engine_of(graph))
    return graph


def walk_graph(spark: SparkSession, graph, cfg: WalkConfig, walks_dir: str, work_dir: str,
               record: RunRecord) -> None:
    """A prepared graph -> walks table at walks_dir (the graph stays prepared: tune walks it once
    per (p, q)). Resumable: a rerun over the same work_dir continues after the last finished
    step batch (distributed engine) or walk batch (local engine)."""
    started = time.perf_counter()
    walkers = graph.stats.nodes * cfg.num_walks
    if record.engine == "local":
        _write_local_walks(spark, graph, cfg, walks_dir, work_dir)
    else:
        walks = walk(spark, graph, cfg, work_dir)
        spark.sparkContext.setJobDescription("spark-n2v walk: assemble and write walks")
        walks.write.mode("overwrite").parquet(walks_dir)
        spark.sparkContext.setJobDescription(None)
    record.seconds["walk"] = round(time.perf_counter() - started, 2)
    record.counts["walks"] = walkers
    log.info("walk: %s walks in %.1f s", record.counts["walks"], record.seconds["walk"])


def _write_local_walks(spark: SparkSession, graph, cfg: WalkConfig, walks_dir: str,
                       work_dir: str) -> None:
    """The local engine's walks, batch by batch into work_dir (each batch a resume point), then
    their files moved into walks_dir (no copy)."""
    files = HadoopFiles(spark, work_dir)
    batches = local.resume_batches(graph.stats.nodes * cfg.num_walks)
    done = (files.read_json(f"{work_dir}/_local.json") or {}).get("batches", 0)
    if done:
        log.info("walk: resuming after %d of %d batches of walks", done, len(batches))
    remaining = sum(b - a for a, b in batches[done:])
    finished = spark.sparkContext.accumulator(0)
    with walks_progress(spark, f"spark-n2v walk: local engine, {remaining:,} walks of "
                        f"{cfg.walk_length}", remaining, cfg.walk_length, finished):
        for k in range(done, len(batches)):
            # Small row groups: each task buffers one in the JVM until it is flushed, and the heap
            # grows with them (measured: peak memory of a 2M-edge run 2.4 -> 2.1 GB, no slower).
            (walk(spark, graph, cfg, work_dir, finished, batches[k]).write.mode("overwrite")
             .option("parquet.block.size", 16 * 2**20).parquet(f"{work_dir}/batch-{k:05d}"))
            files.write_json(f"{work_dir}/_local.json", {"batches": k + 1})
    for k in range(len(batches)):  # a rerun after a kill here moves the files not moved yet
        folder = f"{work_dir}/batch-{k:05d}"
        for name in files.names(folder):
            if name.startswith("part-"):
                files.rename(f"{folder}/{name}", f"{walks_dir}/part-b{k:05d}-{name[5:]}")


def train_stage(spark: SparkSession, walks_dir: str, flag: str, cfg: TrainConfig,
                embeddings_dir: str, work_dir: str, record: RunRecord) -> None:
    """walks table -> embeddings table at embeddings_dir (work_dir: the sgns trainer's tables)."""
    started = time.perf_counter()
    walks = read_parquet_table(spark, walks_dir, flag, (C.WALK,))
    if cfg.trainer == "sgns":
        HadoopFiles(spark, work_dir).delete(work_dir)  # a killed run's tables: train afresh
        embeddings = train_sgns(spark, walks, cfg, work_dir)
    else:
        spark.sparkContext.setJobDescription("spark-n2v train: MLlib Word2Vec")
        embeddings = train_word2vec(walks, cfg)
    embeddings.write.mode("overwrite").parquet(embeddings_dir)
    spark.sparkContext.setJobDescription(None)
    record.seconds["train"] = round(time.perf_counter() - started, 2)
    log.info("train: %.1f s", record.seconds["train"])


def read_ids(spark: SparkSession, path: str, id_type, flag: str):
    """A text file of node ids, one per line (blank lines skipped), as a one-column DataFrame."""
    if is_local(path) and not os.path.isfile(local_path(path)):
        raise UserError(f"{flag} {path}: no such file")
    lines = spark.read.text(path).select(F.trim("value").alias("value")).where("value != ''")
    ids = lines.select(F.col("value").alias("text"), F.col("value").try_cast(id_type).alias(C.ID))
    bad = ids.where(F.col(C.ID).isNull()).first()
    if bad is not None:
        raise UserError(f"{flag} {path}: {bad['text']!r} is not a node id of the embeddings' "
                        f"type ({id_type.simpleString()})")
    return ids.select(C.ID).distinct()


def similar_stage(spark: SparkSession, embeddings_dir: str, cfg: SimilarConfig, out_dir: str,
                  record: RunRecord) -> None:
    """embeddings -> neighbours table (id, neighbor, similarity, rank) at out_dir."""
    started = time.perf_counter()
    spark.sparkContext.setJobDescription("spark-n2v similar: check embeddings")
    emb, nodes, dim = _embeddings(spark, embeddings_dir)
    queries = None
    if cfg.ids:
        ids = read_ids(spark, cfg.ids, emb.schema[C.ID].dataType, "--ids")
        queries = emb.join(ids, C.ID, "left_semi")
        asked, known = ids.count(), queries.count()
        record.counts["ids_unknown"] = asked - known
        if known == 0:
            raise UserError(f"--ids {cfg.ids}: none of its {asked} ids has an embedding")
        if asked > known:
            log.warning("similar: %d of the %d ids in %s have no embedding and are skipped",
                        asked - known, asked, cfg.ids)
    parallelism = spark.sparkContext.defaultParallelism
    spark.sparkContext.setJobDescription(f"spark-n2v similar: {cfg.method} top {cfg.top_k}")
    if cfg.method == "exact":
        neighbours = similar.exact_neighbors(emb, cfg.top_k, dim, queries, parallelism)
    else:
        bits = cfg.lsh_bits or similar.auto_bits(nodes)
        record.counts["lsh_bits"] = bits
        neighbours = similar.approx_neighbors(emb, cfg.top_k, dim, cfg.lsh_tables, bits, cfg.seed,
                                              cfg.max_bucket)
        if queries is not None:
            neighbours = neighbours.join(queries.select(C.ID), C.ID, "left_semi")
    neighbours.write.mode("overwrite").parquet(out_dir)
    written = spark.read.parquet(out_dir)
    record.counts["nodes"] = nodes
    record.counts["rows"] = written.count()
    if cfg.method == "approx" and cfg.recall_sample > 0:
        spark.sparkContext.setJobDescription("spark-n2v similar: recall against exact")
        # a seeded pseudo-random sample of the queries (those approx found nothing for count as
        # recall 0), whatever the partitioning
        sample = ((queries if queries is not None else emb).select(C.ID)
                  .orderBy(F.xxhash64(C.ID, F.lit(cfg.seed)), C.ID).limit(cfg.recall_sample))
        sample_queries = emb.join(sample, C.ID, "left_semi")
        exact = similar.exact_neighbors(emb, cfg.top_k, dim, sample_queries, parallelism)
        recall = similar.recall_at_k(written, exact)
        record.counts["recall_sample"] = sample.count()
        record.quality["recall_at_k"] = round(recall, 4)
        log.info("similar: approx recall@%d %.4f against exact on %d sampled queries",
                 cfg.top_k, recall, record.counts["recall_sample"])
    spark.sparkContext.setJobDescription(None)
    record.seconds["similar"] = round(time.perf_counter() - started, 2)
    log.info("similar: %s rows in %.1f s", f"{record.counts['rows']:,}", record.seconds["similar"])


def read_labels(spark: SparkSession, path: str, id_type, flag: str = "--labels"):
    """(id, label string) from Parquet, or CSV/TSV with a header (by extension), ids cast to the
    embeddings' id type."""
    name = path.rstrip("/")
    if is_local(path) and os.path.isdir(local_path(path)):
        name = next(iter(data_files(path)), name)  # a folder: by its first part file
    suffix = os.path.splitext(name)[1].lower()
    try:
        if suffix in (".csv", ".tsv", ".tab"):
            table = (spark.read.option("header", True)
                     .option("sep", "," if suffix == ".csv" else "\t").csv(path))
        else:
            table = spark.read.parquet(path)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"{flag} {path}: cannot read it as {suffix.lstrip('.') or 'parquet'} "
                        f"({str(exc).splitlines()[0]})") from None
    missing = [c for c in (C.ID, C.LABEL) if c not in table.columns]
    if missing:
        raise UserError(f"{flag} {path}: no column {missing[0]!r} (columns found: "
                        f"{', '.join(table.columns)}); labels need columns id and label")
    rows = table.select(F.col(C.ID).alias("raw"), F.col(C.ID).try_cast(id_type).alias(C.ID),
                        F.col(C.LABEL).cast("string").alias(C.LABEL))
    bad = rows.where(F.col(C.ID).isNull() | F.col(C.LABEL).isNull()).first()
    if bad is not None:
        what = (f"id {bad['raw']!r} is not of the embeddings' id type ({id_type.simpleString()})"
                if bad["raw"] is not None and bad[C.ID] is None else "a row has no id or no label")
        raise UserError(f"{flag} {path}: {what}")
    return rows.select(C.ID, C.LABEL).distinct()


def classify_stage(spark: SparkSession, embeddings_dir: str, labels_path: str, cfg: ClassifyConfig,
                   predictions_dir: str, record: RunRecord) -> dict:
    """embeddings + labels -> predictions table at predictions_dir; returns metrics.json's dict."""
    started = time.perf_counter()
    spark.sparkContext.setJobDescription("spark-n2v classify: labels and split")
    emb, _, _ = _embeddings(spark, embeddings_dir)
    labels = read_labels(spark, labels_path, emb.schema[C.ID].dataType)
    data = classify.split_nodes(labels, emb, cfg.train_fraction, cfg.seed)
    if len(data.classes) < 2:
        raise UserError(f"--labels {labels_path}: classification needs at least 2 labels, found "
                        f"{len(data.classes)}")
    if data.without_embedding:
        log.warning("classify: %d labelled ids have no embedding; they are left out and counted "
                    "in metrics.json", data.without_embedding)
    spark.sparkContext.setJobDescription("spark-n2v classify: logistic regression")
    predicted = classify.predict(data)
    if data.multi_label:
        table = predicted.select(C.ID, F.col("labels").alias(C.LABEL),
                                 F.col("predicted").alias(C.PREDICTION), C.SPLIT)
    else:
        table = predicted.select(C.ID, F.col("labels")[0].alias(C.LABEL),
                                 F.col("predicted")[0].alias(C.PREDICTION), C.SPLIT)
    table.write.mode("overwrite").parquet(predictions_dir)
    written = spark.read.parquet(predictions_dir)
    if not data.multi_label:  # back to arrays for the one scoring path
        written = written.select(C.SPLIT, F.array(C.LABEL).alias("labels"),
                                 F.array(C.PREDICTION).alias("predicted"))
    else:
        written = written.select(C.SPLIT, F.col(C.LABEL).alias("labels"),
                                 F.col(C.PREDICTION).alias("predicted"))
    metrics = classify.f1_metrics(written, data.classes)
    split = {r[C.SPLIT]: r["count"] for r in written.groupBy(C.SPLIT).count().collect()}
    metrics["counts"] = {"train": split.get(classify.TRAIN, 0), "test": split.get(classify.TEST, 0),
                         "classes": len(data.classes),
                         "labelled_without_embedding": data.without_embedding}
    metrics["multi_label"] = data.multi_label
    record.quality.update({k: round(metrics[k], 4) for k in ("macro_f1", "micro_f1", "accuracy")})
    record.counts.update(metrics["counts"])
    spark.sparkContext.setJobDescription(None)
    record.seconds["classify"] = round(time.perf_counter() - started, 2)
    log.info("classify: macro-F1 %.4f, micro-F1 %.4f on %d test nodes in %.1f s",
             metrics["macro_f1"], metrics["micro_f1"], metrics["counts"]["test"],
             record.seconds["classify"])
    return metrics


def _embeddings(spark: SparkSession, path: str):
    """An embeddings table, checked: (DataFrame (id, embedding), nodes, dim)."""
    emb = read_parquet_table(spark, path, "--embeddings", (C.ID, C.EMBEDDING))
    # array<float> whatever the writer used (pyarrow writes Python floats as doubles)
    emb = emb.select(C.ID, F.col(C.EMBEDDING).cast("array<float>").alias(C.EMBEDDING))
    nodes, dim = similar.check_embeddings(emb, "--embeddings")
    return emb, nodes, dim


def export_stage(spark: SparkSession, embeddings_dir: str, cfg: ExportConfig, out: OutputPath,
                 record: RunRecord) -> None:
    """embeddings -> vectors.tsv + metadata.tsv, or embeddings.txt, in the output folder."""
    started = time.perf_counter()
    spark.sparkContext.setJobDescription(f"spark-n2v export: {cfg.format}")
    emb, nodes, dim = _embeddings(spark, embeddings_dir)
    if cfg.format == "word2vec":
        out.write_text("embeddings.txt", export.word2vec_lines(emb, nodes, dim))
    else:
        labels = read_labels(spark, cfg.labels, emb.schema[C.ID].dataType) if cfg.labels else None
        vectors, metadata = export.projector_lines(emb, labels)
        out.write_text("vectors.tsv", vectors)
        out.write_text("metadata.tsv", metadata)
    spark.sparkContext.setJobDescription(None)
    record.counts.update({"nodes": nodes, "dim": dim})
    record.seconds["export"] = round(time.perf_counter() - started, 2)
    log.info("export: %s vectors of %d dimensions (%s) in %.1f s", f"{nodes:,}", dim, cfg.format,
             record.seconds["export"])


def plot_stage(spark: SparkSession, embeddings_dir: str, cfg: PlotConfig, out: OutputPath,
               record: RunRecord) -> None:
    """embeddings -> plot.png in the output folder."""
    started = time.perf_counter()
    export.pyplot()  # fail early, before any Spark work, when matplotlib is missing
    spark.sparkContext.setJobDescription("spark-n2v plot: PCA and sample")
    emb, nodes, _ = _embeddings(spark, embeddings_dir)
    labels = read_labels(spark, cfg.labels, emb.schema[C.ID].dataType) if cfg.labels else None
    xs, ys, names, variance = export.projection(emb, labels, cfg.max_points, cfg.seed)
    title = (f"{embeddings_dir}: {len(xs):,} of {nodes:,} nodes" if len(xs) < nodes
             else f"{embeddings_dir}: {nodes:,} nodes")
    with tempfile.TemporaryDirectory() as tmp:
        picture = os.path.join(tmp, "plot.png")
        export.draw(picture, xs, ys, names, title, variance)
        out.put_file(picture, "plot.png")
    spark.sparkContext.setJobDescription(None)
    record.counts.update({"nodes": nodes, "drawn": len(xs)})
    record.seconds["plot"] = round(time.perf_counter() - started, 2)
    log.info("plot: %s of %s nodes drawn in %.1f s", f"{len(xs):,}", f"{nodes:,}",
             record.seconds["plot"])


def linkpred_stage(spark: SparkSession, edges: EdgeInput, layout: EdgeLayout | None,
                   walk_cfg: WalkConfig, train_cfg: TrainConfig, cfg: LinkPredConfig, work: str,
                   record: RunRecord) -> dict:
    """edges -> metrics.json's dict: hold out edges, embed the rest (walks and embeddings stay in
    `work`, deleted with it), score held-out edges against as many non-edges."""
    started = time.perf_counter()
    spark.sparkContext.setJobDescription("spark-n2v linkpred: read edges, hold out a share")
    table = read_edges(spark, edges, layout or inspect_spark(spark, edges))
    split = linkpred.split_edges(table.edges, edges.directed, cfg.test_fraction, cfg.seed)
    train_rows = split.train.cache()
    log.info("linkpred: %d of %d edges held out", split.held_out, split.total)
    record.seconds["split"] = round(time.perf_counter() - started, 2)
    walk_edges(spark, EdgeTable(train_rows, train_rows.count(), 0), edges, walk_cfg,
               f"{work}/walks", f"{work}/walk", record)
    train_stage(spark, f"{work}/walks", "--walks", train_cfg, f"{work}/embeddings",
                f"{work}/train", record)
    started = time.perf_counter()
    spark.sparkContext.setJobDescription("spark-n2v linkpred: pairs, features, logistic regression")
    parts = spark.sparkContext.defaultParallelism
    n = split.held_out
    negatives = linkpred.non_edges(split.edges, 2 * n, edges.directed, cfg.seed, parts)
    kept, _ = rank_rows(split.edges.join(split.test, [linkpred.U, linkpred.V], "left_anti")
                        .withColumn("h", F.xxhash64(linkpred.U, linkpred.V, F.lit(cfg.seed))),
                        [F.col("h"), F.col(linkpred.U), F.col(linkpred.V)], "draw", parts)
    pairs = (split.test.withColumn("label", F.lit(1.0)).withColumn(C.SPLIT, F.lit("test"))
             .unionByName(kept.where(F.col("draw") < n).select(linkpred.U, linkpred.V)
                          .withColumn("label", F.lit(1.0)).withColumn(C.SPLIT, F.lit("train")))
             .unionByName(negatives.select(linkpred.U, linkpred.V, F.lit(0.0).alias("label"),
                                           F.when(F.col("draw") < n, "test").otherwise("train")
                                           .alias(C.SPLIT))))
    emb = spark.read.parquet(f"{work}/embeddings")
    featured = linkpred.hadamard(pairs, emb).cache()
    counted = {r[C.SPLIT]: r["count"] for r in featured.groupBy(C.SPLIT).count().collect()}
    scored = linkpred.fit_and_score(featured.where(F.col(C.SPLIT) == "train"),
                                    featured.where(F.col(C.SPLIT) == "test"))
    metrics = linkpred.ranking_metrics(scored, parts)
    featured.unpersist()
    train_rows.unpersist()
    metrics["counts"] = {"edges": split.total, "held_out": n,
                         "train_pairs": counted.get("train", 0), "test_pairs": counted.get("test", 0),
                         "pairs_without_embedding": 4 * n - sum(counted.values())}
    record.quality.update({k: round(metrics[k], 4) for k in ("roc_auc", "average_precision")})
    record.counts.update(metrics["counts"])
    spark.sparkContext.setJobDescription(None)
    record.seconds["linkpred"] = round(time.perf_counter() - started, 2)
    log.info("linkpred: ROC AUC %.4f, average precision %.4f on %d test pairs",
             metrics["roc_auc"], metrics["average_precision"], counted.get("test", 0))
    return metrics


def tune_stage(spark: SparkSession, edges: EdgeInput, layout: EdgeLayout | None, labels_path: str,
               walk_cfg: WalkConfig, train_cfg: TrainConfig, cfg: TuneConfig, out: OutputPath,
               record: RunRecord) -> dict:
    """edges + labels -> results table, heat map and metrics.json's dict (the best p, q): the graph
    is prepared once and walked, embedded and classified for every (p, q) of the grid."""
    started = time.perf_counter()
    export.pyplot()  # the heat map needs matplotlib: fail before the work, not after
    spark.sparkContext.setJobDescription("spark-n2v tune: read edges and labels")
    table = read_edges(spark, edges, layout or inspect_spark(spark, edges))
    labels = read_labels(spark, labels_path, table.edges.schema[C.SRC].dataType).cache()
    if labels.select(C.LABEL).distinct().count() < 2:
        raise UserError(f"--labels {labels_path}: classification needs at least 2 labels")
    graph = prepare_edges(spark, table, edges, walk_cfg, record, started)
    results = []
    for p in cfg.ps:
        for q in cfg.qs:
            began = time.perf_counter()
            point = RunRecord(command="")
            folder = f"{out.work}/p{p}-q{q}"
            walk_graph(spark, graph, dataclasses.replace(walk_cfg, return_p=p, inout_q=q),
                       f"{folder}/walks", f"{folder}/walk", point)
            train_stage(spark, f"{folder}/walks", "--walks", train_cfg, f"{folder}/embeddings",
                        f"{folder}/train", point)
            emb = spark.read.parquet(f"{folder}/embeddings")
            data = classify.split_nodes(labels, emb, cfg.train_fraction, walk_cfg.seed)
            scores = classify.f1_metrics(classify.predict(data), data.classes)
            results.append({"p": p, "q": q, "macro_f1": scores["macro_f1"],
                            "micro_f1": scores["micro_f1"],
                            "seconds": round(time.perf_counter() - began, 2)})
            log.info("tune: p %g, q %g: macro-F1 %.4f, micro-F1 %.4f (%.1f s)", p, q,
                     scores["macro_f1"], scores["micro_f1"], results[-1]["seconds"])
    graph.release()
    spark.createDataFrame(results, "p double, q double, macro_f1 double, micro_f1 double, "
                          "seconds double").coalesce(1).write.mode("overwrite").parquet(out.sub("results"))
    best = max(results, key=lambda r: (r["macro_f1"], r["micro_f1"], -r["p"], -r["q"]))
    with tempfile.TemporaryDirectory() as tmp:
        picture = os.path.join(tmp, "heatmap.png")
        export.heatmap(picture, cfg.ps, cfg.qs, {(r["p"], r["q"]): r["macro_f1"] for r in results},
                       best)
        out.put_file(picture, "heatmap.png")
    record.quality["best"] = {k: best[k] for k in ("p", "q", "macro_f1")}
    record.seconds["tune"] = round(time.perf_counter() - started, 2)
    log.info("tune: best p %g, q %g: macro-F1 %.4f", best["p"], best["q"], best["macro_f1"])
    return {"best": best, "grid": results}
