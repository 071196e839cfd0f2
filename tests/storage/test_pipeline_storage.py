"""The pipeline with every path on HDFS or S3 (the edges, the labels, every output): run, update,
similar and classify give the tables of the same commands on local disk (the embeddings bit for
bit: the sgns trainer's tables, rounds and kept model on that storage). One walk engine per
storage (replicated on HDFS, sharded on S3), the other's walks in test_walk_storage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spark_n2v.cli import main
from spark_n2v.io.files import HadoopFiles
from tests.helpers import planted_partition, write_csv

RUN = ["--trainer", "sgns", "--dim", "8", "--walk-length", "10", "--num-walks", "2", "--window",
       "3", "--epochs", "1", "--partitions", "2", "--chunks", "2", "--seed", "5"]
ENGINES = {"hdfs": "replicated", "s3": "sharded"}
# A CSV whose quoted field holds a line break: read record by record (io/edges._records)
MULTILINE = 'src,dst\n"a\nb",c\nc,d\nd,"a\nb"\nd,e\n'


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """Local files: tonight's and tomorrow's edges (v5 vanishes, v200 arrives), the labels."""
    tmp = tmp_path_factory.mktemp("pipeline-storage")
    edges, labels = planted_partition()
    changed = [e for e in edges if "v5" not in e[:2]][3:] + [("v0", "v200", 1), ("v200", "v1", 1)]
    (tmp / "labels.csv").write_text("id,label\n" + "".join(f"{k},b{v}\n" for k, v in labels.items()))
    (tmp / "multiline.csv").write_text(MULTILINE)
    return {"e0.csv": write_csv(tmp / "e0.csv", edges), "e1.csv": write_csv(tmp / "e1.csv", changed),
            "labels.csv": str(tmp / "labels.csv"), "multiline.csv": str(tmp / "multiline.csv")}


def _pipeline(root: str, files: dict[str, str], engine: str) -> None:
    """run, update, similar and classify, every output under root."""
    assert main(["run", "--edges", files["e0.csv"], "--output", f"{root}/run", "--engine", engine,
                 *RUN]) == 0
    assert main(["update", "--previous", f"{root}/run", "--edges", files["e1.csv"], "--output",
                 f"{root}/update", *RUN]) == 0
    assert main(["similar", "--embeddings", f"{root}/update/embeddings", "--output",
                 f"{root}/similar", "--top-k", "3"]) == 0
    assert main(["classify", "--embeddings", f"{root}/update/embeddings", "--labels",
                 files["labels.csv"], "--output", f"{root}/classify", "--seed", "7"]) == 0
    assert main(["walk", "--edges", files["multiline.csv"], "--output", f"{root}/multiline",
                 "--walk-length", "4", "--num-walks", "2", "--seed", "1"]) == 0


def _rows(spark, path: str, key: str) -> dict:
    return {r[key]: r.asDict() for r in spark.read.parquet(path).collect()}


@pytest.fixture(scope="module")
def local(inputs, tmp_path_factory) -> dict[str, str]:
    """The pipeline on local disk, once per engine."""
    roots = {}
    for engine in ENGINES.values():
        roots[engine] = str(tmp_path_factory.mktemp(f"local-{engine}"))
        _pipeline(roots[engine], inputs, engine)
    return roots


@pytest.mark.parametrize("storage", ["hdfs", "s3"])
def test_the_pipeline_on_remote_storage_gives_the_local_tables(spark, remote, inputs, local,
                                                              storage):
    root, engine = remote(storage), ENGINES[storage]
    files = {}
    for name, path in inputs.items():  # the inputs on that storage too
        files[name] = f"{root}/in/{name}"
        with open(path, "rb") as handle:
            HadoopFiles(spark, root).write_bytes(files[name], handle.read())
    _pipeline(root, files, engine)
    here = local[engine]
    for table, key in [("run/walks", "walk_id"), ("update/walks", "walk_id"),
                       ("multiline", "walk_id"), ("similar", "id")]:
        assert _rows(spark, f"{root}/{table}", key) == _rows(spark, f"{here}/{table}", key), table
    for table in ("run/embeddings", "update/embeddings"):
        found, expected = _rows(spark, f"{root}/{table}", "id"), _rows(spark, f"{here}/{table}", "id")
        assert found.keys() == expected.keys() and len(found) > 100
        assert all(np.array_equal(found[k]["embedding"], expected[k]["embedding"]) for k in found)
    assert {w for r in _rows(spark, f"{root}/multiline", "walk_id").values()
            for w in r["walk"]} == {"a\nb", "c", "d", "e"}
    metrics = HadoopFiles(spark, root).read_json(f"{root}/classify/metrics.json")
    with open(f"{here}/classify/metrics.json") as handle:
        assert metrics == json.load(handle)
    record = HadoopFiles(spark, root).read_json(f"{root}/update/_run.json")
    assert record["counts"]["walked_again"] > 0
