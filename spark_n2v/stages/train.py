"""`spark-n2v train`: walks table -> embeddings table (id, embedding), by the trainer the config
names (train.trainers); `run`, `linkpred` and `tune` train through the same function."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from spark_n2v.config import TrainConfig
from spark_n2v.io.tables import read_walks
from spark_n2v.record import RunRecord
from spark_n2v.stages.stage import WALKS_INPUT, Context, Stage
from spark_n2v.train.trainers import trainer

log = logging.getLogger(__name__)


def train_walks(spark: SparkSession, walks_dir: str, cfg: TrainConfig, embeddings_dir: str,
                work_dir: str, record: RunRecord, keep_model: str | None = None) -> None:
    """walks table -> embeddings table at embeddings_dir (work_dir: the trainer's scratch; the
    state a warm start needs moved to keep_model, if given and the trainer has one)."""
    with record.timed("train"):
        walks = read_walks(spark, walks_dir)
        chosen = trainer(cfg.trainer)
        trained = chosen.train(spark, walks, cfg, work_dir)
        trained.embeddings.write.mode("overwrite").parquet(embeddings_dir)
        record.counts["epochs"] = trained.epochs
        record.counts.update(trained.facts)
        if keep_model:
            chosen.keep_model(spark, work_dir, keep_model)
    log.info("train: %.1f s", record.seconds["train"])


def _run(ctx: Context) -> None:
    train_walks(ctx.spark, ctx.inputs["walks"], ctx.configs["train"], ctx.out.staging,
                ctx.out.work + "/train", ctx.record)


STAGE = Stage("train", "walks table -> embeddings table (id, embedding): skip-gram, our negative-"
              "sampling trainer (--trainer sgns) or MLlib Word2Vec", _run, configs=("train",),
              inputs=(WALKS_INPUT,))
