"""Run the library's stages on small graphs and bring the (small) results back for checking."""

from __future__ import annotations

import itertools

from spark_n2v.config import EdgeInput, WalkConfig
from spark_n2v.io import inspect_local, read_edges
from spark_n2v.walk import prepare_graph, walk

_work = itertools.count()

ENGINES = ("local", "distributed")


def prepared(spark, path: str, directed: bool, weighted: bool, partitions: int = 2,
             engine: str = "distributed"):
    """The prepared graph the given engine walks (LocalGraph or PreparedGraph)."""
    cfg = EdgeInput(path=path, directed=directed, weighted=weighted)
    return prepare_graph(read_edges(spark, cfg, inspect_local(cfg)), cfg,
                         WalkConfig(engine=engine), partitions)


def walks_of(spark, graph, tmp_path, **walk_args) -> dict:
    """{walk_id: walk} for a test-sized corpus."""
    work = tmp_path / f"work-{next(_work)}"
    df = walk(spark, graph, WalkConfig(**walk_args), str(work))
    return {row["walk_id"]: list(row["walk"]) for row in df.collect()}
