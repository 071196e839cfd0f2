"""Run the library's stages on small graphs and bring the (small) results back for checking."""

from __future__ import annotations

import itertools

from spark_n2v.config import EdgeInput, WalkConfig
from spark_n2v.graph import PreparedGraph, prepare
from spark_n2v.io import inspect_local, read_edges
from spark_n2v.walk import walk

_work = itertools.count()


def prepared(spark, path: str, directed: bool, weighted: bool, partitions: int = 2) -> PreparedGraph:
    cfg = EdgeInput(path=path, directed=directed, weighted=weighted)
    return prepare(read_edges(spark, cfg, inspect_local(cfg)), directed, weighted, partitions)


def walks_of(spark, graph: PreparedGraph, tmp_path, **walk_args) -> dict:
    """{walk_id: walk} for a test-sized corpus."""
    work = tmp_path / f"work-{next(_work)}"
    df = walk(spark, graph, WalkConfig(**walk_args), str(work))
    return {row["walk_id"]: list(row["walk"]) for row in df.collect()}
