"""The Python API: every CLI command on DataFrames (or a GraphFrame) already in a session.

    from spark_n2v import api
    walks = api.walk(edges_df, "hdfs:///n2v/walks", WalkConfig(return_p=0.5))
    embeddings = api.run(graph_frame, "hdfs:///n2v/run", train=TrainConfig(trainer="sgns"))
    neighbours = api.similar(embeddings, "hdfs:///n2v/similar", SimilarConfig(top_k=10))

A command takes its input tables as DataFrames (the edges as an edge DataFrame or a GraphFrame;
`update` also the folder of the run it updates) and its settings as the config objects of
`spark_n2v.config`, one per config table, as the CLI's flags and `--config` files fill them
(the walk's and the trainer's partitions are `WalkConfig.partitions` and
`TrainConfig.partitions`). It returns the tables it wrote, read back from its output folder, as
DataFrames (metrics as a dict; `export` and `plot` return the folder and the picture's path).

Outputs behave as the CLI's (the same stages run them, through `stages.stage.execute`): written
beside the target and moved into place when complete, an existing output replaced only with
overwrite=True, `_run.json` beside the tables, and a rerun of the same call over a killed run's
work resumes it (an input DataFrame is identified by its query plan and the files it reads). An
input DataFrame must give the same rows each time it is read (a stage may read it more than once):
a table, or a seeded sample of one. Errors name the configs'
fields (`walk.return_p`) and this module's arguments.

In the examples, `edges` is an edge DataFrame (src, dst), `labels` a DataFrame (id, label) and
`out` a folder; tests/test_api.py runs every example in order.

A GraphFrame (graphframes' class, or anything with `vertices` and `edges` DataFrames) gives its
`edges` (columns src and dst, and the weight column if one is named) and its `vertices` (column
id): vertices without an edge are kept, each walking alone, as a node with only a self-loop does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_n2v.config import (ClassifyConfig, EdgeInput, ExportConfig, LinkPredConfig,
                              PlotConfig, SimilarConfig, TrainConfig, TuneConfig, UpdateConfig,
                              WalkConfig)
from spark_n2v.errors import UserError, library_name
from spark_n2v.io.edges import EdgeSource, edges_of_dataframe, layout
from spark_n2v.io.files import HadoopFiles
from spark_n2v.io.reach import check_storage
from spark_n2v.record import RunRecord, file_fingerprints, frame_fingerprints
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
    """`spark-n2v walk`: writes the walks table (walk_id, walk) at `output` and returns it.

    Example:

        walks = api.walk(edges, f"{out}/walks", WalkConfig(num_walks=4, walk_length=10, seed=1))
    """
    spark = _call("walk", output, overwrite, {"walk": walk}, graph=graph,
                  edge_args=(src, dst, weight, directed))
    return spark.read.parquet(output)


def train(walks: DataFrame, output: str, train: TrainConfig = TrainConfig(), *,
          overwrite: bool = False) -> DataFrame:
    """`spark-n2v train`: the walks (walk_id, walk) -> the embeddings table (id, embedding) at
    `output`, returned.

    Example:

        embeddings = api.train(walks, f"{out}/embeddings",
                               TrainConfig(trainer="sgns", dim=8, chunks=1, seed=1))
    """
    spark = _call("train", output, overwrite, {"train": train}, tables={"walks": walks})
    return spark.read.parquet(output)


def run(graph: DataFrame | Any, output: str, walk: WalkConfig = WalkConfig(),
        train: TrainConfig = TrainConfig(), *, src: str = "src", dst: str = "dst",
        weight: str | None = None, directed: bool = False, overwrite: bool = False) -> DataFrame:
    """`spark-n2v run`: writes output/walks and output/embeddings and returns the embeddings
    table (id, embedding).

    Example:

        embeddings = api.run(edges, f"{out}/run", WalkConfig(num_walks=4, walk_length=10),
                             TrainConfig(trainer="sgns", dim=8, chunks=1))
    """
    spark = _call("run", output, overwrite, {"walk": walk, "train": train}, graph=graph,
                  edge_args=(src, dst, weight, directed))
    return spark.read.parquet(f"{output}/embeddings")


def update(graph: DataFrame | Any, previous: str, output: str, walk: WalkConfig = WalkConfig(),
           train: TrainConfig = TrainConfig(), update: UpdateConfig = UpdateConfig(), *,
           src: str = "src", dst: str = "dst", weight: str | None = None,
           directed: bool = False, overwrite: bool = False) -> DataFrame:
    """`spark-n2v update`: the new edges and the folder of an earlier `run` (or update) with the
    sgns trainer, made with the same walk and train settings -> a complete new output at
    `output`; returns its embeddings table.

    Example:

        settings = (WalkConfig(num_walks=4, walk_length=10),
                    TrainConfig(trainer="sgns", dim=8, chunks=1))
        api.run(edges, f"{out}/night1", *settings)
        tomorrow = edges.sample(fraction=0.9, seed=1)  # the next night's edges: some are gone
        embeddings = api.update(tomorrow, f"{out}/night1", f"{out}/night2", *settings)
    """
    spark = _call("update", output, overwrite, {"walk": walk, "train": train, "update": update},
                  graph=graph, edge_args=(src, dst, weight, directed),
                  paths={"previous": previous})
    return spark.read.parquet(f"{output}/embeddings")


def similar(embeddings: DataFrame, output: str, similar: SimilarConfig = SimilarConfig(), *,
            overwrite: bool = False) -> DataFrame:
    """`spark-n2v similar`: the neighbours table (id, neighbor, similarity, rank) at `output`,
    returned.

    Example:

        neighbours = api.similar(embeddings, f"{out}/similar", SimilarConfig(top_k=5))
    """
    spark = _call("similar", output, overwrite, {"similar": similar},
                  tables={"embeddings": embeddings})
    return spark.read.parquet(output)


def classify(embeddings: DataFrame, labels: DataFrame, output: str,
             classify: ClassifyConfig = ClassifyConfig(), *,
             overwrite: bool = False) -> tuple[DataFrame, dict]:
    """`spark-n2v classify`: output/predictions (id, label, prediction, split) and
    output/metrics.json; returns (the predictions table, the metrics).

    Example:

        predictions, metrics = api.classify(embeddings, labels, f"{out}/classify")
        print(metrics["macro_f1"])
    """
    spark = _call("classify", output, overwrite, {"classify": classify},
                  tables={"embeddings": embeddings, "labels": labels})
    return spark.read.parquet(f"{output}/predictions"), _metrics(spark, output)


def linkpred(graph: DataFrame | Any, output: str, walk: WalkConfig = WalkConfig(),
             train: TrainConfig = TrainConfig(), linkpred: LinkPredConfig = LinkPredConfig(), *,
             src: str = "src", dst: str = "dst", weight: str | None = None,
             directed: bool = False, overwrite: bool = False) -> dict:
    """`spark-n2v linkpred`: hold out edges, embed the rest, score the held-out edges against as
    many non-edges; returns output/metrics.json's metrics.

    Example:

        scores = api.linkpred(edges, f"{out}/linkpred", WalkConfig(num_walks=4, walk_length=10),
                              TrainConfig(trainer="sgns", dim=8, chunks=1))
        print(scores["roc_auc"])
    """
    spark = _call("linkpred", output, overwrite,
                  {"walk": walk, "train": train, "linkpred": linkpred}, graph=graph,
                  edge_args=(src, dst, weight, directed))
    return _metrics(spark, output)


def tune(graph: DataFrame | Any, labels: DataFrame, output: str, walk: WalkConfig = WalkConfig(),
         train: TrainConfig = TrainConfig(), tune: TuneConfig = TuneConfig(), *,
         src: str = "src", dst: str = "dst", weight: str | None = None, directed: bool = False,
         overwrite: bool = False) -> DataFrame:
    """`spark-n2v tune`: walk, train and classify for every (p, q) of the grid; returns
    output/results (p, q, macro_f1, ...); output/metrics.json names the best pair and
    output/heatmap.png draws the grid (needs matplotlib).

    Example:

        results = api.tune(edges, labels, f"{out}/tune", WalkConfig(num_walks=4, walk_length=10),
                           TrainConfig(trainer="sgns", dim=8, chunks=1),
                           TuneConfig(grid_p="0.5,2", grid_q="1"))
    """
    spark = _call("tune", output, overwrite, {"walk": walk, "train": train, "tune": tune},
                  graph=graph, edge_args=(src, dst, weight, directed), tables={"labels": labels})
    return spark.read.parquet(f"{output}/results")


def export(embeddings: DataFrame, output: str, export: ExportConfig = ExportConfig(), *,
           overwrite: bool = False) -> str:
    """`spark-n2v export`: the embeddings as text files in `output` (Embedding Projector TSVs,
    word2vec text) or as Redis keys; returns `output`.

    Example:

        folder = api.export(embeddings, f"{out}/w2v", ExportConfig(format="word2vec"))
    """
    _call("export", output, overwrite, {"export": export}, tables={"embeddings": embeddings})
    return output


def plot(embeddings: DataFrame, output: str, plot: PlotConfig = PlotConfig(), *,
         overwrite: bool = False) -> str:
    """`spark-n2v plot`: the embeddings' first two principal components, coloured by label, as
    output/plot.png (needs matplotlib); returns the picture's path.

    Example:

        picture = api.plot(embeddings, f"{out}/plot")
    """
    _call("plot", output, overwrite, {"plot": plot}, tables={"embeddings": embeddings})
    return f"{output}/plot.png"


def _metrics(spark: SparkSession, output: str) -> dict:
    return HadoopFiles(spark, output).read_json(f"{output}/metrics.json")


def _call(name: str, output: str, overwrite: bool, configs: dict[str, Any], *,
          graph: Any = None, edge_args: tuple = (), tables: dict[str, Any] | None = None,
          paths: dict[str, str] | None = None) -> SparkSession:
    """Run stage `name` as the CLI does: its configs by table, its input tables as DataFrames,
    folders it reads (`paths`), and the edges of `graph`; returns the inputs' session."""
    tables, paths = tables or {}, paths or {}
    try:
        for what, table in tables.items():
            if not isinstance(table, DataFrame):
                raise UserError("{" + what + "} must be a DataFrame, got {type}",
                                type=type(table).__name__)
        frames, edges = dict(tables), None
        if graph is not None:
            spark = _edges(graph).sparkSession
            edges = edge_source(graph, *edge_args)
            configs = {"input": edges.cfg, **configs}
            frames.update({"edges": graph.edges, "vertices": graph.vertices}
                          if is_graphframe(graph) else {"edges": graph})
        else:
            spark = next(iter(tables.values())).sparkSession
        check_storage(spark, paths, output)  # as the CLI: unreachable storage in a minute
        record = RunRecord(command=f"spark_n2v.api.{name}")
        record.parameters = {table: dataclasses.asdict(c) for table, c in configs.items()}
        record.inputs = {**frame_fingerprints(frames), **file_fingerprints(spark, paths)}
        execute(STAGES[name], spark, output, overwrite, record, configs, {**tables, **paths},
                edges, job_name=f"api.{name}")
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
