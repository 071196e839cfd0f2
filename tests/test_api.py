"""The Python API: an edge DataFrame or a GraphFrame wherever the CLI takes an edge table,
DataFrames for its other tables, and one call per command whose docstring example runs."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass

import pyarrow.parquet as pq
import pytest
from pyspark.sql import DataFrame

from spark_n2v import api, config
from spark_n2v.cli import main
from spark_n2v.config import TrainConfig, WalkConfig
from spark_n2v.errors import UserError

EDGES = [(1, 2, 1.0), (2, 3, 2.0), (3, 1, 1.0), (3, 4, 0.5), (4, 5, 1.0)]
WALK = WalkConfig(walk_length=6, num_walks=3, seed=11, return_p=0.5, inout_q=2.0)


def _walks(path: str) -> dict:
    table = pq.read_table(path).to_pydict()
    return dict(zip(table["walk_id"], table["walk"]))


@dataclass
class _FrameLike:
    """graphframes.GraphFrame's shape: `vertices` (id, ...) and `edges` (src, dst, ...)."""

    vertices: DataFrame
    edges: DataFrame


def test_edge_dataframe_walks_like_the_cli(spark, tmp_path):
    edges = spark.createDataFrame(EDGES, "a long, b long, w double")
    got = api.walk(edges, str(tmp_path / "api"), WALK, src="a", dst="b", weight="w")
    assert got.count() == 5 * 3
    edges.write.parquet(str(tmp_path / "e.parquet"))
    assert main(["walk", "--edges", str(tmp_path / "e.parquet"), "--src-col", "a", "--dst-col",
                 "b", "--weight-col", "w", "--weighted", "--output", str(tmp_path / "cli"),
                 "--walk-length", "6", "--num-walks", "3", "--seed", "11", "--p", "0.5",
                 "--q", "2"]) == 0
    assert _walks(str(tmp_path / "api")) == _walks(str(tmp_path / "cli"))
    assert (tmp_path / "api" / "_run.json").exists()
    with pytest.raises(UserError, match="already exists"):
        api.walk(edges, str(tmp_path / "api"), WALK, src="a", dst="b")


def test_graphframe_keeps_lone_vertices_and_embeds(spark, tmp_path):
    vertices = spark.createDataFrame([(i, f"n{i}") for i in range(1, 7)], "id long, name string")
    edges = spark.createDataFrame(EDGES, "src long, dst long, weight double")
    graph = _FrameLike(vertices, edges)
    embeddings = api.run(graph, str(tmp_path / "run"), WALK,
                         TrainConfig(trainer="sgns", dim=4, chunks=1), weight="weight")
    rows = {r["id"]: r["embedding"] for r in embeddings.collect()}
    assert set(rows) == {1, 2, 3, 4, 5, 6} and {len(v) for v in rows.values()} == {4}
    walks = _walks(str(tmp_path / "run" / "walks"))
    assert [w for w in walks.values() if 6 in w] == [[6]] * 3  # vertex 6 has no edge
    assert all(len(w) == 6 for w in walks.values() if 6 not in w)


def test_bad_graph_arguments_are_named(spark, tmp_path):
    with pytest.raises(UserError, match="edge DataFrame or a GraphFrame"):
        api.walk([(1, 2)], str(tmp_path / "x"))
    edges = spark.createDataFrame(EDGES, "a long, b long, w double")
    with pytest.raises(UserError, match="no column 'src'") as error:
        api.walk(edges, str(tmp_path / "x"))
    assert "(src); columns found: a, b, w" in str(error.value)  # the argument, not a flag
    with pytest.raises(UserError, match=r"^walk\.return_p must be a finite number > 0, got 0"):
        WalkConfig(return_p=0)
    vertices = spark.createDataFrame([(1,)], "vid long")
    with pytest.raises(UserError, match="vertices have no column 'id'"):
        api.walk(_FrameLike(vertices, edges.toDF("src", "dst", "weight")), str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def _graphframes_jvm(spark) -> bool:
    try:
        spark.sparkContext._jvm.java.lang.Class.forName("org.graphframes.GraphFrame")
        return True
    except Exception:  # noqa: BLE001 - py4j wraps ClassNotFoundException
        return False


def test_real_graphframe(spark, tmp_path):
    try:
        import graphframes
    except ImportError as exc:
        pytest.skip(f"the graphframes Python package cannot be imported ({exc}): pip install "
                    "'spark-n2v[graphframes]'; the duck-typed GraphFrame test above covers the API")
    if not _graphframes_jvm(spark):
        pytest.skip("GraphFrames' JVM package is not on Spark's classpath: it comes from Maven "
                    "Central (--packages io.graphframes:graphframes-spark4_2.13:<version>), which "
                    "this machine's Maven Central does not serve (404 for every version); the "
                    "duck-typed GraphFrame test above covers the API")
    vertices = spark.createDataFrame([(i,) for i in range(1, 7)], "id long")
    edges = spark.createDataFrame(EDGES, "src long, dst long, weight double")
    graph = graphframes.GraphFrame(vertices, edges)
    walks = api.walk(graph, str(tmp_path / "gf"), WALK)
    assert walks.count() == 6 * 3


# Every command's docstring example, run in this order in one namespace (later examples use the
# tables earlier ones made), and what each must have made on the demo graph (77 nodes).
NODES = 77
EXAMPLES = {
    "walk": lambda ns: ns["walks"].count() == NODES * 4,
    "train": lambda ns: ns["embeddings"].count() == NODES
    and len(ns["embeddings"].first()["embedding"]) == 8,
    "similar": lambda ns: ns["neighbours"].count() == NODES * 5,
    "classify": lambda ns: ns["predictions"].count() == NODES
    and 0 < ns["metrics"]["macro_f1"] <= 1,
    "export": lambda ns: open(f"{ns['folder']}/embeddings.txt").readline() == f"{NODES} 8\n",
    "plot": lambda ns: os.path.getsize(ns["picture"]) > 1000,
    "run": lambda ns: ns["embeddings"].count() == NODES,
    "update": lambda ns: ns["embeddings"].count() == _nodes(ns["tomorrow"]),
    "linkpred": lambda ns: ns["scores"]["roc_auc"] > 0.5,  # better than chance
    "tune": lambda ns: ns["results"].count() == 2,
}


def _nodes(edges: DataFrame) -> int:
    return edges.select("src").union(edges.select("dst")).distinct().count()


def _example(function) -> str:
    """The code under "Example:" in a docstring, dedented."""
    text = function.__doc__.split("Example:", 1)[1]
    return textwrap.dedent(text.strip("\n").rstrip())


def test_every_command_has_an_api_call_whose_example_runs(spark, tmp_path):
    from spark_n2v.stages import STAGES
    assert set(EXAMPLES) == set(STAGES)  # one call per CLI command
    demo = os.path.join(os.path.dirname(api.__file__), "data")
    namespace = {
        "api": api, "spark": spark, "out": str(tmp_path),
        "edges": spark.read.option("header", True).csv(f"{demo}/lesmis.csv").select("src", "dst"),
        "labels": spark.read.option("header", True).csv(f"{demo}/lesmis_labels.csv"),
        **{name: getattr(config, name) for name in dir(config) if name.endswith("Config")}}
    for name, made in EXAMPLES.items():
        exec(_example(getattr(api, name)), namespace)  # noqa: S102 - our own docstrings
        assert made(namespace), name


def test_table_arguments_are_named_in_the_apis_terms(spark, tmp_path):
    walks = spark.createDataFrame([(0, ["a", "b"])], "walk_id long, path array<string>")
    with pytest.raises(UserError, match=r"^walks \(a DataFrame\): no column 'walk'"):
        api.train(walks, str(tmp_path / "t"))
    with pytest.raises(UserError, match="^embeddings must be a DataFrame, got str"):
        api.similar("some/path", str(tmp_path / "s"))
    assert not (tmp_path / "t").exists() and not (tmp_path / "s").exists()
