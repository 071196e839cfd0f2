"""The stage interface: what a command runs, and the one way every front end runs it.

A stage reads its inputs, runs its transforms and writes its tables into the staging folder of
its output (record.OutputPath), recording what it did in the run record. The CLI, the spark-submit
jobs and the Python API all run stages through `execute`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pyspark.sql import DataFrame, SparkSession

from spark_n2v.config import SparkConfig
from spark_n2v.io.edges import EdgeSource
from spark_n2v.record import OutputPath, RunRecord, staged_run


# The input tables stages read besides their configs: (name, help), the CLI's --name flags.
WALKS_INPUT = ("walks", "walks table (walk_id, walk)")
EMBEDDINGS_INPUT = ("embeddings", "embeddings table (id, embedding)")
LABELS_INPUT = ("labels", "labels table (id, label): Parquet, or CSV/TSV with a header; several "
                "rows per id make the task multi-label")


@dataclass(frozen=True)
class Context:
    """What a stage gets: the session, its configs by table name (config.CONFIG_TABLES), its input
    tables by name (paths, or the Python API's DataFrames: io.tables reads either), its output
    folder, the run record, and its edges (stages that walk)."""

    spark: SparkSession
    configs: Mapping[str, Any]
    out: OutputPath
    record: RunRecord
    inputs: Mapping[str, str | DataFrame] = field(default_factory=dict)
    edges: EdgeSource | None = None


@dataclass(frozen=True)
class Stage:
    """A command: its name, what it does (the CLI's help), the config tables it takes, the input
    tables it reads besides them ((name, help): the CLI's --name flags), and the function that
    runs it."""

    name: str
    help: str
    run: Callable[[Context], None]
    configs: tuple[str, ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()

    @property
    def walks_and_trains(self) -> bool:
        """Stages that walk and train take `run`'s flag names (--train-partitions)."""
        return "walk" in self.configs and "train" in self.configs


def execute(stage: Stage, spark: SparkSession, output: str, overwrite: bool, record: RunRecord,
            configs: Mapping[str, Any], inputs: Mapping[str, str | DataFrame] | None = None,
            edges: EdgeSource | None = None, job_name: str | None = None) -> None:
    """Run a stage into `output`: atomic, resumable, with `_run.json` (record.staged_run)."""
    spark_cfg = configs.get(SparkConfig.TABLE)
    work_root = spark_cfg.work_dir if spark_cfg is not None else None
    with staged_run(spark, output, overwrite, job_name or stage.name, record, work_root) as out:
        try:
            stage.run(Context(spark, configs, out, record, inputs or {}, edges))
        finally:
            spark.sparkContext.setJobDescription(None)
