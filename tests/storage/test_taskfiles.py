"""Files of Python tasks on any storage: tasks write arrays and read them back in other tasks (and
a Spark-written table), the same on local disk, HDFS and S3; a file bigger than a piece goes in
pieces, a missing one reads as None."""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa
import pytest

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
