"""The sgns trainer with its output (and work folder) on HDFS and on S3: the embeddings of the
same run on local disk, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from spark_n2v.cli import main
from tests.helpers import planted_partition, write_csv

TRAIN = ["--trainer", "sgns", "--dim", "8", "--window", "3", "--partitions", "2", "--chunks",
         "2", "--epochs", "1", "--seed", "3"]


@pytest.fixture(scope="module")
def walks(spark, tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("train-storage")
    edges, _ = planted_partition()
    path = str(tmp / "walks")
    assert main(["walk", "--edges", write_csv(tmp / "pp.csv", edges), "--output", path,
                 "--walk-length", "10", "--num-walks", "2", "--seed", "1"]) == 0
    return path


def _embeddings(spark, path) -> dict:
    return {r["id"]: np.asarray(r["embedding"], np.float32)
            for r in spark.read.parquet(path).collect()}


@pytest.mark.parametrize("storage", ["hdfs", "s3"])
def test_training_on_remote_storage_gives_the_local_embeddings(spark, remote, walks, tmp_path,
                                                               storage):
    local = str(tmp_path / "local")
    assert main(["train", "--walks", walks, "--output", local, *TRAIN]) == 0
    output = remote(storage)
    assert main(["train", "--walks", walks, "--output", output, *TRAIN]) == 0
    expected, found = _embeddings(spark, local), _embeddings(spark, output)
    assert found.keys() == expected.keys() and len(found) > 100
    assert all(np.array_equal(found[k], expected[k]) for k in expected)
