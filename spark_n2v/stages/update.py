"""`spark-n2v update`: a previous run's output and new edges -> a complete new output, walking
and training again only near what changed.

1. Prepare the new edges (the graph store, and DIR/_update/edges for the next update) and diff
   them against the previous output's edges (update.diff).
2. Walk again from the nodes within --radius hops of a changed edge's ends, from the new nodes,
   and from the starts of previous walks that visit a vanished node (those walks name a node the
   graph no longer has): the very walks a full run on the new graph walks for these nodes
   (walk.starts).
3. The corpus, DIR/walks: every other node's previous walks (walk ids renumbered for the new
   graph) and the new walks, written by Python tasks file by file (update.corpus), which count
   the tokens it loses and gains: with the previous model's counts, the vocabulary's.
4. Train from the previous model (update.state.MODEL: its rows; a new node starts at the mean of
   its neighbours' rows, or with --new-node-start trainer as a run starts it) on the first
   --update-walks of each node's new walks (all of a new node's, and with --new-node-start
   trainer all of its neighbours'), at --update-learning-rate -> DIR/embeddings, and the model
   -> DIR/_update/model.

Nothing changed: the previous tables are copied. Resumable like `run`: a killed update rerun
with the same command keeps its new walks and corpus and resumes its training.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.errors import UserError
from spark_n2v.frames import count_ids
from spark_n2v.io.files import HadoopFiles
from spark_n2v.io.tables import read_walks
from spark_n2v.progress import describe
from spark_n2v.record import ResumePoints
from spark_n2v.stages.stage import Context, Stage
from spark_n2v.stages.walk import prepare, walk_graph
from spark_n2v.train.sgns import warm_chunks
from spark_n2v.train.trainers import trainer
from spark_n2v.update import corpus as update_corpus
from spark_n2v.update import diff, state
from spark_n2v.walk import starts as start_sets

log = logging.getLogger(__name__)

_RESUME_STATE = "_stages.json"
# What an update must share with the run it updates, by config table: the walks it keeps and the
# model it starts from were made with these.
SAME = {"input": ("directed", "weighted"),
        "walk": ("return_p", "inout_q", "walk_length", "num_walks"),
        "train": ("dim", "window", "negatives", "min_count")}
PREVIOUS_INPUT = ("previous", "output of an earlier spark-n2v run (or update) with --trainer "
                  "sgns, made with the same walk and train flags")


def check_previous(spark: SparkSession, previous: str, configs) -> dict:
    """The previous output's _run.json, once it is known to be one an update can start from."""
    files = HadoopFiles(spark, previous)
    run = files.read_json(f"{previous}/_run.json")
    if run is None or not files.exists(f"{previous}/{state.EDGES}") \
            or not files.exists(f"{previous}/walks"):
        raise UserError("{previous} {path} is not the output of spark-n2v run or update (it has no "
                        "_run.json, walks or _update/edges): give such an output, or run the "
                        "whole pipeline with spark-n2v run", path=previous)
    params = run.get("parameters", {})
    if params.get("train", {}).get("trainer") != "sgns" or \
            not files.exists(f"{previous}/{state.MODEL}/_model.json"):
        raise UserError("{previous} {path} was not trained with {train.trainer=sgns}, whose model "
                        "an update starts from: rerun it with spark-n2v run {train.trainer=sgns}",
                        path=previous)
    if configs["train"].trainer != "sgns":
        raise UserError("an update trains with {train.trainer=sgns}: pass it (or leave "
                        "{train.trainer} as the previous run's)")
    for table, names in SAME.items():
        for name in names:
            was, now = params.get(table, {}).get(name), getattr(configs[table], name)
            if was != now:
                raise UserError(f"{{previous}} {{path}} was made with {{{table}.{name}={was}}}, "
                                f"this update has {{{table}.{name}={now}}}: give the previous "
                                "run's walk and train settings, or rerun everything with "
                                "spark-n2v run", path=previous)
    return run


def again_starts(changes: diff.GraphDiff, new_arcs: DataFrame, previous_walks: DataFrame,
                 radius: int) -> DataFrame:
    """The ids whose walks are walked again: near a change, new, or starting a previous walk that
    visits a vanished node (looked for only if a node vanished: it reads every previous walk)."""
    near = diff.near(new_arcs, changes.changed.union(changes.ids(C.NEW)).distinct(),
                     radius).select(C.ID)
    if not changes.counts.vanished_nodes:
        return near.distinct()
    vanished = changes.ids(C.VANISHED)
    visits = (previous_walks.select(F.col(C.WALK)[0].alias("_start"),
                                    F.explode(C.WALK).alias(C.ID))
              .join(vanished, C.ID, "left_semi").select(F.col("_start").alias(C.ID)))
    return near.union(visits).distinct()


def _repetition(nodes: int):
    """r of walk id r x V + v (the walk's repetition; a run numbers walks so)."""
    return (F.col(C.WALK_ID) / nodes).cast("long")


def default_walks(num_walks: int) -> int:
    """--update-walks by default: a fifth of a node's walks. Measured on the 200k-node benchmark
    graph, 1% of edges changed (bench/update.py, 10 walks a node): training 1, 2, 3, 5 or all 10
    gives the same macro-F1 (within 0.001 of a full run's) and stability (median cosine
    0.98-0.999); 1, 2 and 3 take 0.16x, 0.20x and 0.21x of a full run's time. What more walks buy
    is how far the changed edges' ends move: the added edges' median cosine, 0.087 before and
    0.449 after a full run, is 0.106, 0.125, 0.143, 0.176 and 0.239."""
    return max(1, -(-num_walks // 5))


def new_neighbours(changes: diff.GraphDiff) -> DataFrame:
    """(id, neighbour): each new node with its neighbours that are not new (both ways: a directed
    graph's walks reach a new node from its in-neighbours too), where it starts (WarmStart)."""
    new = changes.ids(C.NEW)
    added = changes.arcs.where(F.col(C.CHANGE) == C.ADDED)
    both = diff.both_ways(added.select(C.SRC, C.DST))
    return (both.join(new.withColumnRenamed(C.ID, C.SRC), C.SRC, "left_semi")
            .join(new.withColumnRenamed(C.ID, C.DST), C.DST, "left_anti")
            .select(F.col(C.SRC).alias(C.ID), F.col(C.DST).alias(C.NEIGHBOUR)).distinct())


def whole_ids(changes: diff.GraphDiff, neighbours: bool) -> DataFrame:
    """The nodes that train all their new walks (id): the new nodes, which have no earlier walks,
    and if `neighbours`, their neighbours, whose walks are most of the contexts that place a new
    node (on the 200k benchmark graph with 1% new nodes started as a run starts them, training
    only their own walks and 2 of each neighbour's left the new nodes' macro-F1 at 0.77 against
    a full run's 0.87; all of them: 0.89)."""
    new = changes.ids(C.NEW)
    if not neighbours:
        return new
    return new.union(new_neighbours(changes).select(F.col(C.NEIGHBOUR).alias(C.ID))).distinct()


def trained_walks(new_walks: DataFrame, whole: DataFrame, nodes: int, walks: int) -> DataFrame:
    """The new walks an update trains on: each node's first `walks` (walk ids r x V + v: r <
    walks), and all of those of the nodes in `whole` (id: whole_ids)."""
    first = _repetition(nodes) < walks
    rest = (new_walks.where(~first).join(whole.withColumnRenamed(C.ID, "_whole"),
                                          F.col(C.WALK)[0] == F.col("_whole"), "left_semi"))
    return new_walks.where(first).unionByName(rest)


def token_counts(walks: DataFrame) -> DataFrame:
    """(id, count) of a walks table's tokens: counted in Arrow, a table per task, then summed
    (Spark's explode and aggregate of each token took 9 s for the 200k benchmark graph's 28M)."""
    element = walks.schema[C.WALK].dataType.elementType.simpleString()
    return (walks.select(C.WALK).mapInArrow(_count_tokens, f"{C.ID} {element}, {C.COUNT} long")
            .groupBy(C.ID).agg(F.sum(C.COUNT).alias(C.COUNT)))


def _count_tokens(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield from count_ids(pa.table({C.ID: pc.list_flatten(b.column(0))}) for b in batches)


def _update(ctx: Context) -> None:
    spark, out, record, configs = ctx.spark, ctx.out, ctx.record, ctx.configs
    previous = ctx.inputs["previous"]
    run = check_previous(spark, previous, configs)
    edges_cfg, walk_cfg, train_cfg = configs["input"], configs["walk"], configs["train"]
    points = ResumePoints(spark, out.work, _RESUME_STATE)
    from_neighbours = configs["update"].new_node_start == "neighbours"
    graph = prepare(spark, ctx.edges, walk_cfg, out.work + "/walk", record,
                    keep_edges=out.sub(state.EDGES))
    try:
        describe(spark, "spark-n2v update: what changed")
        old_edges = spark.read.parquet(f"{previous}/{state.EDGES}")
        new_edges = spark.read.parquet(out.sub(state.EDGES))
        with record.timed("diff"):  # (unique: neither graph had an edge twice)
            changes = diff.diff(old_edges, new_edges, edges_cfg.directed, edges_cfg.weighted,
                                unique=not (run["graph"]["duplicates_merged"]
                                            or graph.stats.duplicates_merged))
        record.counts["changes"] = changes.counts.as_dict()
        log.info("update: %s", ", ".join(f"{v:,} {k.replace('_', ' ')}"
                                          for k, v in changes.counts.as_dict().items()))
        if changes.counts.nothing:
            changes.release()
            _copy_previous(spark, previous, out)
            return
        previous_walks = read_walks(spark, f"{previous}/walks", "previous")
        new_walks, again = out.work + "/new-walks", f"{out.work}/{update_corpus.AGAIN}"
        model, counted = f"{previous}/{state.MODEL}", out.work + "/counts"
        neighbours = out.work + "/new-neighbours"  # (id, neighbour) if from_neighbours
        if points.find("walked") is None:
            with record.timed("starts"):
                again_starts(changes, diff.arcs(new_edges, edges_cfg.directed,
                                                edges_cfg.weighted),
                             previous_walks, configs["update"].radius
                             ).write.mode("overwrite").parquet(again)
                whole_ids(changes, neighbours=not from_neighbours
                          ).write.mode("overwrite").parquet(out.work + "/whole-ids")
                if from_neighbours:
                    new_neighbours(changes).write.mode("overwrite").parquet(neighbours)
                for change in (C.NEW, C.VANISHED):  # for the corpus's tasks
                    changes.ids(change).write.mode("overwrite").parquet(f"{out.work}/{change}")
                whole = spark.read.parquet(out.work + "/whole-ids").count()
                chosen = start_sets.write(spark, graph.store, spark.read.parquet(again),
                                          out.work + "/starts")
            walk_graph(spark, graph, walk_cfg, new_walks, out.work + "/walk/again", record, chosen)
            points.mark("walked", starts=chosen.nodes, whole=whole,
                        seconds={k: record.seconds[k] for k in ("starts", "walk")})
        walked = points.find("walked")
        record.seconds.update(walked["seconds"])
        record.counts["walked_again"] = walked["starts"] * walk_cfg.num_walks
        record.counts["walks"] = graph.stats.nodes * walk_cfg.num_walks  # the corpus
        if points.find("corpus") is None:
            with record.timed("corpus"):
                describe(spark, "spark-n2v update: the new corpus")
                HadoopFiles(spark, out.sub("walks")).delete(out.sub("walks"))  # a killed try's
                changed = update_corpus.write(
                    spark, f"{previous}/walks", new_walks, out.sub("walks"),
                    update_corpus.Changes(out.work, run["graph"]["nodes"], graph.stats.nodes),
                    previous_walks.schema[C.WALK].dataType.elementType.simpleString())
                # computing the counts writes the corpus (with min_count > 1 they go unused)
                update_corpus.counts(spark.read.parquet(f"{model}/vocab"), changed
                                     ).write.mode("overwrite").parquet(counted)
            points.mark("corpus", seconds=record.seconds["corpus"])
        record.seconds["corpus"] = points.find("corpus")["seconds"]
        changes.release()
    finally:
        graph.release()
    with record.timed("train"):
        describe(spark, "spark-n2v update: train from the previous model")
        if train_cfg.min_count > 1:  # the kept vocabulary lacks the rare nodes: count them all
            counts = token_counts(read_walks(spark, out.sub("walks")))
        else:
            counts = spark.read.parquet(counted)
        update_cfg, nodes = configs["update"], graph.stats.nodes
        first = min(update_cfg.walks or default_walks(walk_cfg.num_walks), walk_cfg.num_walks)
        record.counts["trained_walks"] = (walked["starts"] * first + walked["whole"]
                                          * (walk_cfg.num_walks - first))
        share = record.counts["trained_walks"] / record.counts["walks"]
        chosen_trainer = trainer(train_cfg.trainer)
        trained = chosen_trainer.train_from(
            spark, trained_walks(read_walks(spark, new_walks),
                                 spark.read.parquet(out.work + "/whole-ids"), nodes, first),
            dataclasses.replace(train_cfg, learning_rate=update_cfg.learning_rate,
                                chunks=warm_chunks(train_cfg, nodes, share)),
            out.work + "/train", model, counts,
            spark.read.parquet(neighbours) if from_neighbours else None)
        trained.embeddings.write.mode("overwrite").parquet(out.sub("embeddings"))
        record.counts["epochs"] = trained.epochs
        record.counts.update(trained.facts)
        chosen_trainer.keep_model(spark, out.work + "/train", out.sub(state.MODEL))


def _copy_previous(spark: SparkSession, previous: str, out) -> None:
    """Nothing changed: the previous output's tables and model, as they are."""
    log.info("update: nothing changed since %s: its tables are copied", previous)
    files = HadoopFiles(spark, previous)
    for name in ("walks", "embeddings", state.MODEL):
        files.copy(f"{previous}/{name}", out.sub(name))


STAGE = Stage("update", "a previous run's output (--previous) and new edges -> a complete new "
              "output: walks again near the changes, trains from the previous model", _update,
              configs=("input", "walk", "train", "update"), inputs=(PREVIOUS_INPUT,))
