"""The stages as library calls: what the CLI and the spark-submit jobs run.

Each stage reads its input, runs the pure transforms, and writes its table into the output folder it
is given (a staging folder: moving it into place is the caller's job, see io.OutputPath).
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict, dataclass, field

from pyspark.sql import SparkSession

from spark_n2v import __version__
from spark_n2v import columns as C
from spark_n2v.config import EdgeInput, TrainConfig, WalkConfig
from spark_n2v.graph import GraphStats
from spark_n2v.io import EdgeLayout, inspect_spark, read_edges, read_parquet_table
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

    def as_dict(self, spark: SparkSession) -> dict:
        import numpy
        import pyarrow
        import pyspark
        return {**asdict(self), "versions": {
            "spark_n2v": __version__, "pyspark": pyspark.__version__, "spark": spark.version,
            "python": platform.python_version(), "numpy": numpy.__version__,
            "pyarrow": pyarrow.__version__}}


def walk_stage(spark: SparkSession, edges: EdgeInput, layout: EdgeLayout | None, cfg: WalkConfig,
               walks_dir: str, work_dir: str, record: RunRecord) -> GraphStats:
    """edges -> walks table at walks_dir."""
    started = time.perf_counter()
    spark.sparkContext.setJobDescription("spark-n2v prepare: read and check edges")
    layout = layout or inspect_spark(spark, edges)
    table = read_edges(spark, edges, layout)
    spark.sparkContext.setJobDescription("spark-n2v prepare: index nodes, build adjacency")
    graph = prepare_graph(table, edges, cfg, default_partitions(spark, cfg))
    record.graph = graph.stats.as_dict()
    record.engine = engine_of(graph)
    record.seconds["prepare"] = round(time.perf_counter() - started, 2)
    log.info("prepare: %s nodes, %s edges in %.1f s (%s engine)", graph.stats.nodes,
             graph.stats.edges, record.seconds["prepare"], engine_of(graph))
    started = time.perf_counter()
    finished = spark.sparkContext.accumulator(0)
    walks = walk(spark, graph, cfg, work_dir, finished)
    walkers = graph.stats.nodes * cfg.num_walks
    if record.engine == "local":  # the walking happens in this write's tasks
        # Small row groups: each task buffers one in the JVM until it is flushed, and the heap grows
        # with them (measured: peak memory of a 2M-edge run 2.4 -> 2.1 GB, no slower).
        with walks_progress(spark, f"spark-n2v walk: local engine, {walkers:,} walks of "
                            f"{cfg.walk_length}", walkers, cfg.walk_length, finished):
            walks.write.option("parquet.block.size", 16 * 2**20).parquet(walks_dir)
    else:
        spark.sparkContext.setJobDescription("spark-n2v walk: assemble and write walks")
        walks.write.parquet(walks_dir)
        spark.sparkContext.setJobDescription(None)
    graph.release()
    record.seconds["walk"] = round(time.perf_counter() - started, 2)
    record.counts["walks"] = walkers
    log.info("walk: %s walks in %.1f s", record.counts["walks"], record.seconds["walk"])
    return graph.stats


def train_stage(spark: SparkSession, walks_dir: str, flag: str, cfg: TrainConfig,
                embeddings_dir: str, work_dir: str, record: RunRecord) -> None:
    """walks table -> embeddings table at embeddings_dir (work_dir: the sgns trainer's tables)."""
    started = time.perf_counter()
    walks = read_parquet_table(spark, walks_dir, flag, (C.WALK,))
    if cfg.trainer == "sgns":
        embeddings = train_sgns(spark, walks, cfg, work_dir)
    else:
        spark.sparkContext.setJobDescription("spark-n2v train: MLlib Word2Vec")
        embeddings = train_word2vec(walks, cfg)
    embeddings.write.parquet(embeddings_dir)
    spark.sparkContext.setJobDescription(None)
    record.seconds["train"] = round(time.perf_counter() - started, 2)
    log.info("train: %.1f s", record.seconds["train"])
