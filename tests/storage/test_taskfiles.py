"""Files of Python tasks on any storage: tasks write arrays and read them back in other tasks (and
a Spark-written table), the same on local disk, HDFS and S3; a file bigger than a piece goes in
pieces, a missing one reads as None."""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa
import pytest

from spark_n2v.io.files import HadoopFiles, load_array, save_array
from spark_n2v.io.taskfiles import FileRef, TableRef, TaskFiles


@pytest.fixture(params=["local", "hdfs", "s3"])
def storage(request, tmp_path) -> str:
    """A fresh folder on each storage."""
    name = f"taskfiles-{uuid.uuid4().hex[:8]}"
    if request.param == "local":
        return str(tmp_path / name)
    if request.param == "hdfs":
        return f"{request.getfixturevalue('hdfs').uri}/{name}"
    return request.getfixturevalue("s3").url(name)


ARRAYS = {0: np.arange(1000, dtype=np.int64).reshape(250, 4),  # 8000 bytes: 8 pieces of 1000
          1: np.zeros((0, 3), np.float32),                     # empty
          2: np.linspace(0, 1, 7, dtype=np.float32)}


def test_tasks_write_files_that_other_tasks_read_on_any_storage(spark, storage):
    files = TaskFiles(storage, piece_bytes=1000)

    def write(t, inputs, outputs):
        outputs.array(f"a-{t}", ARRAYS[t])
        yield t, int(ARRAYS[t].nbytes)

    reports = files.run(spark, [[], [], []], write, "first", ["task", "bytes"])
    assert sorted((r["task"], r["bytes"]) for r in reports) == [(0, 8000), (1, 0), (2, 28)]
    spark.createDataFrame([(i % 2, i) for i in range(10)], "k int, v long") \
        .write.partitionBy("k").parquet(f"{storage}/table")

    def read(t, inputs):
        got = inputs.array("a-" + str((t + 1) % 3))
        values = inputs.table("rows", ["v"])
        yield pa.RecordBatch.from_pydict({
            "task": [t], "same": [bool(np.array_equal(got, ARRAYS[(t + 1) % 3])
                                       and got.dtype == ARRAYS[(t + 1) % 3].dtype)],
            "missing": [inputs.array("gone") is None],
            "values": [sorted(values.column("v").to_pylist()) if values else []]})

    inputs = [[FileRef("first", f"a-{(t + 1) % 3}"), FileRef("first", "gone"),
               TableRef(f"table/k={t}", "rows")] for t in range(3)]
    rows = sorted(files.frame(spark, inputs, read, "task long, same boolean, missing boolean, "
                                                   "values array<long>").collect())
    assert [(r.task, r.same, r.missing) for r in rows] == [(0, True, True), (1, True, True),
                                                          (2, True, True)]
    assert [r["values"] for r in rows] == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9], []]


def test_a_replicated_dataset_is_read_as_local_files_on_any_storage(spark, storage):
    files = TaskFiles(storage, piece_bytes=1000)
    dataset = f"replica-{uuid.uuid4().hex[:8]}"  # shipped by name: unique in the application

    def write(t, inputs, outputs):
        outputs.array(f"shard-{t}/numbers", ARRAYS[t])
        outputs.file(f"shard-{t}/raw.bin", bytes([t]) * 3000)
        yield (t,)

    files.run(spark, [[], [], []], write, dataset, ["task"])
    replica = files.replicate(spark, dataset)

    def read(t, inputs):
        other = (t + 1) % 3
        numbers = np.load(replica.path(f"shard-{other}/numbers.npy"), mmap_mode="r")
        with open(replica.path(f"shard-{other}/raw.bin"), "rb") as handle:
            raw = handle.read()
        yield pa.RecordBatch.from_pydict({
            "task": [t], "same": [bool(np.array_equal(numbers, ARRAYS[other]))
                                  and raw == bytes([other]) * 3000]})

    rows = files.frame(spark, [[], [], []], read, "task long, same boolean").collect()
    assert sorted((r.task, r.same) for r in rows) == [(0, True), (1, True), (2, True)]


def _shipped(spark) -> list[str]:
    return list(spark.sparkContext.listFiles)


def test_a_failed_or_deleted_shipment_does_not_break_later_tasks(spark, hdfs):
    """Spark registers a shipped Hadoop folder before fetching it, and every executor fetches
    every registered folder before its tasks: a failed fetch, or a shipped folder deleted since,
    would fail every later task of the application unless forgotten."""
    hadoop = HadoopFiles(spark, hdfs.uri)
    missing = hadoop.qualify(f"{hdfs.uri}/never-written-{uuid.uuid4().hex[:8]}")
    with pytest.raises(Exception, match="FileNotFoundException|does not exist"):
        hadoop.ship(missing, attempts=2)
    assert not any(f.startswith(missing) for f in _shipped(spark))
    assert spark.sparkContext.parallelize(range(4), 2).map(lambda x: x * 2).sum() == 12

    files = TaskFiles(f"{hdfs.uri}/shipped-{uuid.uuid4().hex[:8]}")
    files.run(spark, [[]], lambda t, inputs, outputs: iter([(outputs.array("a", ARRAYS[2]),)]),
              "data", ["none"])
    files.replicate(spark, "data")
    folder = hadoop.qualify(f"{files.folder}/data")
    assert any(f.rstrip("/") == folder for f in _shipped(spark))
    hadoop.delete(files.folder)
    assert not any(f.startswith(folder) for f in _shipped(spark))


@pytest.mark.parametrize("path", ["hdfs://127.0.0.1:1/x.npy", "s3a://bucket/x.npy"])
def test_a_python_task_refuses_to_open_a_remote_path_itself(path):
    """Remote bytes reach tasks through Spark; pyarrow's own clients (libhdfs, its S3) are never
    used, so a remote path given to the local file functions is a bug, stopped at once."""
    with pytest.raises(ValueError, match="local files only"):
        load_array(path)
    with pytest.raises(ValueError, match="local files only"):
        save_array(path, np.zeros(3))
