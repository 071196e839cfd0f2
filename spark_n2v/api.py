"""The Python API: the CLI's walk and run on an edge DataFrame or a GraphFrame already in a session.

    from spark_n2v import api
    walks = api.walk(edges_df, "hdfs:///n2v/walks", walk=WalkConfig(return_p=0.5))
    embeddings = api.run(graph_frame, "hdfs:///n2v/run", train=TrainConfig(trainer="sgns"))

Outputs behave as the CLI's (the same stages run them): written beside the target and moved into
place when complete, an existing output replaced only with overwrite=True, `_run.json` beside the
tables, and a rerun of the same call over a killed run's work resumes it (the input is identified
by its query plan). Errors name the configs' fields (`walk.return_p`) and this module's arguments.

A GraphFrame (graphframes' class, or anything with `vertices` and `edges` DataFrames) gives its
`edges` (columns src and dst, and the weight column if one is named) and its `vertices` (column
id): vertices without an edge are kept, each walking alone, as a node with only a self-loop does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_n2v.config import EdgeInput, TrainConfig, WalkConfig
from spark_n2v.errors import UserError, library_name
from spark_n2v.io.edges import EdgeSource, edges_of_dataframe, layout
from spark_n2v.record import RunRecord, frame_fingerprints
from spark_n2v.stages import STAGES
from spark_n2v.stages.stage import execute

# The edge input's fields, as this module's arguments name them (weight= names the column and
# turns weighting on).
_ARGUMENTS = {"input.src_col": "src", "input.dst_col": "dst", "input.weight_col": "weight",
              "input.weighted": "weight", "input.directed": "directed"}


def _name(param: str, value: str | None) -> str:
    if param in _ARGUMENTS:
        return _ARGUMENTS[param]
    return library_name(param, value)


def is_graphframe(graph: Any) -> bool:
    return isinstance(getattr(graph, "vertices", None), DataFrame) and \
        isinstance(getattr(graph, "edges", None), DataFrame)


def edge_source(graph: DataFrame | Any, src: str = "src", dst: str = "dst",
                weight: str | None = None, directed: bool = False) -> EdgeSource:
    """An edge DataFrame or a GraphFrame -> checked edges, with the input settings they were read
    with (weighted when `weight` names a column)."""
    edges = _edges(graph)
    what = "GraphFrame" if is_graphframe(graph) else "edge DataFrame"
    cfg = EdgeInput(path=f"the {what}", src_col=src, dst_col=dst, weight_col=weight or "weight",
                    directed=directed, weighted=weight is not None)
    lay = layout(cfg, "parquet", None, edges.columns)
    if is_graphframe(graph):
        if "id" not in graph.vertices.columns:
            raise UserError("the GraphFrame's vertices have no column 'id'; columns found: "
                            "{found}", found=", ".join(graph.vertices.columns))
        edges = _with_lone_vertices(edges, graph.vertices, lay.src, lay.dst, lay.weight)
    return EdgeSource(cfg, table=edges_of_dataframe(edges, cfg, lay))


def _with_lone_vertices(edges: DataFrame, vertices: DataFrame, src: str, dst: str,
                        weight: str | None) -> DataFrame:
    """Vertices without an edge as self-loops, which the pipeline drops while keeping the node."""
    id_type = edges.schema[src].dataType
    ends = edges.select(F.col(src).alias("id")).union(edges.select(F.col(dst).alias("id")))
    lone = vertices.select(F.col("id").cast(id_type).alias("id")).join(ends, "id", "left_anti")
    loops = lone.select(F.col("id").alias(src), F.col("id").alias(dst),
                        *([F.lit(1.0).alias(weight)] if weight else []))
    return edges.select(src, dst, *([weight] if weight else [])).unionByName(
        loops, allowMissingColumns=False)


def walk(graph: DataFrame | Any, output: str, walk: WalkConfig = WalkConfig(), *,
         src: str = "src", dst: str = "dst", weight: str | None = None, directed: bool = False,
         overwrite: bool = False) -> DataFrame:
    """`spark-n2v walk` on a DataFrame or GraphFrame: writes the walks table at `output` and
    returns it (read back from there)."""
    spark = _run_stage("walk", graph, output, overwrite, src, dst, weight, directed, walk=walk)
    return spark.read.parquet(output)


def run(graph: DataFrame | Any, output: str, walk: WalkConfig = WalkConfig(),
        train: TrainConfig = TrainConfig(), *, src: str = "src", dst: str = "dst",
        weight: str | None = None, directed: bool = False, overwrite: bool = False) -> DataFrame:
    """`spark-n2v run` on a DataFrame or GraphFrame: writes output/walks and output/embeddings
    and returns the embeddings table (id, embedding)."""
    spark = _run_stage("run", graph, output, overwrite, src, dst, weight, directed, walk=walk,
                       train=train)
    return spark.read.parquet(f"{output}/embeddings")


def _run_stage(name: str, graph: Any, output: str, overwrite: bool, src: str, dst: str,
               weight: str | None, directed: bool, **configs: Any) -> SparkSession:
    """Run stage `name` on the graph's edges; returns the graph's session."""
    spark = _edges(graph).sparkSession
    try:
        edges = edge_source(graph, src, dst, weight, directed)
        configs = {"input": edges.cfg, **configs}
        record = RunRecord(command=f"spark_n2v.api.{name}")
        record.parameters = {table: dataclasses.asdict(c) for table, c in configs.items()}
        frames = {"edges": graph.edges, "vertices": graph.vertices} if is_graphframe(graph) \
            else {"edges": graph}
        record.inputs = frame_fingerprints(frames)
        execute(STAGES[name], spark, output, overwrite, record, configs, edges=edges,
                job_name=f"api.{name}")
    except UserError as exc:
        raise exc.named_by(_name) from None
    return spark


def _edges(graph: Any) -> DataFrame:
    """The edge DataFrame of a GraphFrame, or the DataFrame itself."""
    edges = graph.edges if is_graphframe(graph) else graph
    if not isinstance(edges, DataFrame):
        raise UserError("expected an edge DataFrame or a GraphFrame, got {type}",
                        type=type(graph).__name__)
    return edges
