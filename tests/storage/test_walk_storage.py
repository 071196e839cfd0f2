"""Walks with their output (the graph store and the engines' work files) on HDFS and on S3: the
walks of the same command on local disk. Each engine on the storage test_pipeline_storage does
not give it (there: replicated on HDFS, sharded on S3), so that both run on both."""

from __future__ import annotations

import pytest

from spark_n2v.cli import main
from tests.helpers import planted_partition, write_csv

WALK = ["--walk-length", "8", "--num-walks", "2", "--p", "0.5", "--q", "2", "--seed", "4",
        "--partitions", "3"]


@pytest.fixture(scope="module")
def edges(tmp_path_factory) -> str:
    edges, _ = planted_partition()
    return write_csv(tmp_path_factory.mktemp("walk-storage") / "pp.csv", edges)


def _walks(spark, path) -> dict:
    return {r["walk_id"]: list(r["walk"]) for r in spark.read.parquet(path).collect()}


@pytest.mark.parametrize("engine, storage", [("replicated", "s3"), ("sharded", "hdfs")])
def test_walks_on_remote_storage_are_the_local_walks(spark, remote, edges, tmp_path, storage,
                                                     engine):
    local = str(tmp_path / "local")
    assert main(["walk", "--edges", edges, "--output", local, "--engine", engine, *WALK]) == 0
    output = remote(storage)
    assert main(["walk", "--edges", edges, "--output", output, "--engine", engine, *WALK]) == 0
    expected = _walks(spark, local)
    assert _walks(spark, output) == expected and len(expected) == 240
