"""Files that Python tasks write and read, on any storage Spark reaches.

A `TaskFiles` folder holds datasets (sub-folders, each written by one job) of named files: numpy
arrays, or Arrow tables. Jobs over it are `frame` (tasks that read files and return rows) and
`run` (tasks that read files and write files). How the bytes move depends on the folder:

- **local** (a plain path or file:): tasks open the files themselves (`.npy` with np.save and
  np.load, Parquet folders with pyarrow). The fast path: a 256 MB table written and read back
  took 0.3 s, against 5 s through Spark (measured on 2 cores).
- **anything else** (hdfs://, s3a://, abfss://, gs://, whatever Spark's Hadoop configuration
  reaches): Spark moves the bytes, so that nothing on the executors but Spark needs to reach the
  storage (no libhdfs, no JVM in Python workers, no second copy of the credentials). A task's
  outputs are rows (file, seq, data): a file in pieces of PIECE_BYTES (Spark values and Arrow
  cells stop at 2 GB), which Spark writes as Parquet into dataset/file=NAME/. A job's tasks
  receive the rows of their input files in their own partition: partition t of the job's input
  is the union of its files' scans, each coalesced to one partition, and a marker row that says
  which task it is (so a task without inputs runs too).

Datasets a Spark job writes as tables (the sgns token split, partitioned by part and chunk) are
inputs too (`TableRef`): a task receives its folder's rows as Arrow tables.
"""

from __future__ import annotations

import fcntl
import functools
import io
import json
import os
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.io.files import (HadoopFiles, is_local, load_array, local_path, read_parquet,
                                save_array, save_bytes)

PIECE_BYTES = 16 << 20  # bytes per row of a file sent through Spark
BLOB_SCHEMA = f"{C.FILE} string, {C.SEQ} int, {C.DATA} binary"
# Parquet of large binary values: no dictionary (it only fails over, after trying, on values
# this size: writes took 2.4x as long), no compression (arrays of floats barely compress).
BLOB_OPTIONS = {"compression": "none", "parquet.enable.dictionary": "false"}
_MARKER = ""  # a task's marker row: file "", seq = the task's number
_REPORT = "_report"  # a `run` task's report rows, as one file of its dataset
# Set in a session whose tasks read files through Spark: bytes per Arrow batch from the JVM to
# Python (a few pieces, far below the 2 GB an Arrow batch's binary column holds), and unions that
# keep their children's partitions apart (with children of one partition each, Spark would
# otherwise report the union as one partition and run it as one task).
ROUTED_SETTINGS = {"spark.sql.execution.arrow.maxBytesPerBatch": str(64 << 20),
                   "spark.sql.unionOutputPartitioning": "false"}


@dataclass(frozen=True)
class FileRef:
    """The file `name` + `ext` (".npy": an array; "": bytes) of the dataset `dataset` of a
    TaskFiles folder (`root`: another folder than the job's), named `alias` among a task's
    inputs if given, else `name`."""

    dataset: str
    name: str
    root: str | None = None
    alias: str | None = None
    ext: str = ".npy"

    @property
    def key(self) -> str:
        return self.alias or self.name

    @property
    def file(self) -> str:
        return self.name + self.ext


@dataclass(frozen=True)
class TableRef:
    """A Parquet folder (in the TaskFiles folder) that a Spark job wrote as a table; a task
    receives its rows, named `key` among its inputs."""

    folder: str  # relative to the TaskFiles folder
    key: str


Ref = Union[FileRef, TableRef]


class Inputs:
    """A task's input files, by name."""

    def __init__(self, files: "TaskFiles", refs: list[Ref], pieces: dict[str, list] | None):
        self._files, self._refs = files, {r.key: r for r in refs}
        if len(self._refs) < len(refs):
            raise ValueError(f"a task's inputs share a name: {[r.key for r in refs]}")
        self._pieces = pieces  # None: local, open the files themselves

    def array(self, name: str) -> np.ndarray | None:
        """The named array, or None if the file does not exist."""
        ref = self._refs[name]
        if self._pieces is None:
            try:
                return load_array(self._files.path_of(ref))
            except FileNotFoundError:
                return None
        pieces = self._pieces.get(name)
        return None if not pieces else _array_of(pieces)

    def table(self, name: str, columns: list[str]) -> pa.Table | None:
        """The named table's columns, or None if it does not exist (or has no rows)."""
        ref = self._refs[name]
        if self._pieces is None:
            return read_parquet(f"{self._files.folder}/{ref.folder}", columns)
        pieces = self._pieces.get(name)
        if not pieces:
            return None
        tables = [pa.ipc.open_stream(piece).read_all() for piece in pieces]
        return pa.concat_tables(tables).select(columns)


class Outputs:
    """Where a `run` task's files go: written at once (local), or kept as rows to hand to Spark."""

    def __init__(self, files: "TaskFiles", dataset: str, local: bool):
        self._files, self._dataset, self._local = files, dataset, local
        self.rows: list[pa.RecordBatch] = []

    def array(self, name: str, array: np.ndarray) -> None:
        """An array, as a .npy file `name`.npy."""
        ref = FileRef(self._dataset, name)
        if self._local:
            save_array(self._files.path_of(ref), array)
        else:
            self.rows.extend(_array_rows(ref.file, array, self._files.piece_bytes))

    def file(self, name: str, data: pa.Buffer | bytes) -> None:
        """Bytes, as the file `name`."""
        if self._local:
            save_bytes(self._files.path_of(FileRef(self._dataset, name, ext="")), data)
        else:
            self.rows.extend(_bytes_rows(name, data, self._files.piece_bytes))


@dataclass(frozen=True)
class TaskFiles:
    """A folder of files Python tasks write and read (a local path or any Hadoop URI).
    Picklable: tasks get it with their work."""

    folder: str
    piece_bytes: int = PIECE_BYTES  # bytes per row through Spark

    @property
    def local(self) -> bool:
        return is_local(self.folder)

    def path_of(self, ref: FileRef) -> str:
        """Where a local folder keeps a file."""
        return _join(ref.root or self.folder, ref.dataset, ref.file)

    def replicate(self, spark: SparkSession, dataset: str) -> "Replica":
        """A dataset every task may read whole, as local files: on local disk, the dataset
        itself; elsewhere Spark ships it to every executor once (SparkContext.addFile: each
        executor fetches it through Hadoop before its first task of the next job), and a task
        lays out the files it opens on the executor's disk, once per executor. The dataset's
        last path part must be unique in the application (Spark refuses a name added twice
        from two places)."""
        folder = _join(self.folder, dataset)
        if self.local:
            return Replica(local_path(folder), None)
        HadoopFiles(spark, folder).ship(folder)
        return Replica(folder, folder.rstrip("/").rpartition("/")[2])

    def delete(self, spark: SparkSession, dataset: str) -> None:
        HadoopFiles(spark, self.folder).delete(_join(self.folder, dataset))

    # --- jobs --------------------------------------------------------------------------------

    def frame(self, spark: SparkSession, inputs: list[list[Ref]],
              body: Callable[[int, Inputs], Iterable[pa.RecordBatch]], schema: str
              ) -> DataFrame:
        """Task t of len(inputs) reads the files inputs[t] and yields rows of `schema`: the
        DataFrame of those rows (lazy: the tasks run when it is computed)."""
        if self.local:
            task = functools.partial(_local_task, self, inputs, body)
            return spark.range(0, len(inputs), 1, max(1, len(inputs))).mapInArrow(task, schema)
        for key, value in ROUTED_SETTINGS.items():  # the session's, from now on (see above)
            spark.conf.set(key, value)
        task = functools.partial(_remote_task, self, inputs, body)
        return self._routed(spark, inputs).mapInArrow(task, schema)

    def run(self, spark: SparkSession, inputs: list[list[Ref]],
            body: Callable[[int, Inputs, Outputs], Iterable[tuple]], dataset: str,
            report: list[str]) -> list[dict]:
        """Task t of len(inputs) reads the files inputs[t], writes files into `dataset` through
        its Outputs, and returns report rows (tuples of the fields `report`): the report rows of
        every task. The dataset is whole when this returns (replaced, if it was there)."""
        if self.local:
            data = spark.range(0, len(inputs), 1, max(1, len(inputs)))

            def each(batches, outputs):
                for batch in batches:
                    for t in batch.column("id").to_numpy():
                        yield from body(int(t), Inputs(self, inputs[int(t)], None), outputs)
        else:
            for key, value in ROUTED_SETTINGS.items():
                spark.conf.set(key, value)
            data = self._routed(spark, inputs)

            def each(batches, outputs):
                def task(t: int, found: Inputs) -> Iterator[tuple]:
                    yield from body(t, found, outputs)
                yield from _remote_task(self, inputs, task, batches)
        return self.map_writing(spark, data, each, dataset, report, replace=True)

    def map_writing(self, spark: SparkSession, data: DataFrame,
                    body: Callable[[Iterator[pa.RecordBatch], Outputs], Iterable[tuple]],
                    dataset: str, report: list[str], replace: bool = False) -> list[dict]:
        """data.mapInArrow, each task writing files into `dataset` through an Outputs and
        returning report rows (tuples of the fields `report`): the report rows of every task.
        The files are whole when this returns; several jobs may write one dataset, unless
        `replace`."""
        if self.local:
            def local_task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
                yield _report_batch(list(body(batches, Outputs(self, dataset, True))))

            rows = data.mapInArrow(local_task, "report string").collect()  # one row a task
            return [dict(zip(report, r)) for row in rows for r in json.loads(row[0])]
        job = uuid.uuid4().hex[:12]

        def remote_task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            from pyspark import TaskContext
            outputs = Outputs(self, dataset, False)
            rows = list(body(batches, outputs))
            yield from outputs.rows
            name = f"{_REPORT}-{job}-{TaskContext.get().partitionId():05d}"
            yield from _bytes_rows(name, _json(rows).encode(), self.piece_bytes)

        for key, value in ROUTED_SETTINGS.items():
            spark.conf.set(key, value)
        folder = _join(self.folder, dataset)
        (data.mapInArrow(remote_task, BLOB_SCHEMA).write
         .mode("overwrite" if replace else "append").options(**BLOB_OPTIONS)
         .partitionBy(C.FILE).parquet(folder))
        reports = (spark.read.parquet(folder).where(F.col(C.FILE).startswith(f"{_REPORT}-{job}-"))
                   .select(C.DATA).collect())  # one row a task
        return [dict(zip(report, r)) for row in reports for r in json.loads(bytes(row[0]))]

    def _routed(self, spark: SparkSession, inputs: list[list[Ref]]) -> DataFrame:
        """Partition t: task t's marker row and the rows of its files (missing files: none)."""
        present: dict[str, set[str]] = {}

        def exists(ref: Ref) -> bool:
            folder, name = ((_join(ref.root or self.folder, ref.dataset), _partition(ref.file))
                            if isinstance(ref, FileRef) else _parent(f"{self.folder}/{ref.folder}"))
            if folder not in present:
                present[folder] = set(HadoopFiles(spark, folder).names(folder))
            return name in present[folder]

        parts = []
        for t, refs in enumerate(inputs):
            part = spark.range(t, t + 1, 1, 1).select(
                F.lit(_MARKER).alias(C.FILE), F.col("id").cast("int").alias(C.SEQ),
                F.lit(b"").cast("binary").alias(C.DATA))
            for ref in refs:
                if exists(ref):
                    part = part.unionByName(self._scan(spark, ref))
            parts.append(part.coalesce(1))
        return functools.reduce(DataFrame.union, parts)

    def _scan(self, spark: SparkSession, ref: Ref) -> DataFrame:
        """A file's rows (file, seq, data)."""
        if isinstance(ref, FileRef):
            return (spark.read.schema(f"{C.SEQ} int, {C.DATA} binary")
                    .parquet(_join(ref.root or self.folder, ref.dataset, _partition(ref.file)))
                    .select(F.lit(ref.key).alias(C.FILE), C.SEQ, C.DATA))
        # a table: its rows as Arrow IPC pieces, made in the task that reads them
        return (spark.read.parquet(f"{self.folder}/{ref.folder}").coalesce(1)
                .mapInArrow(functools.partial(_table_rows, ref.key), BLOB_SCHEMA))


@dataclass(frozen=True)
class Replica:
    """A dataset every task reads as local files (TaskFiles.replicate). Picklable."""

    folder: str        # a local folder, or the dataset's URI
    name: str | None   # the name Spark ships it under (None: local)

    def path(self, file: str) -> str | None:
        """A local path of the dataset's file (relative path `file`), or None if the dataset has
        no such file; in tasks."""
        if self.name is None:
            local = os.path.join(self.folder, file)
            return local if os.path.exists(local) else None
        from pyspark import SparkFiles
        local = os.path.join(SparkFiles.getRootDirectory(), f"{self.name}.files", file)
        if not os.path.exists(local):
            rows = os.path.join(SparkFiles.get(self.name), _partition(file))
            if not os.path.isdir(rows):
                return None
            _lay_out(rows, local)
        return local


    def table(self, folder: str, columns: list[str]) -> pa.Table | None:
        """The columns of a Parquet folder in the dataset (a table Spark wrote, shipped as it
        is), or None if there is no such folder; in tasks."""
        if self.name is None:
            return read_parquet(os.path.join(self.folder, folder), columns)
        from pyspark import SparkFiles
        return read_parquet(os.path.join(SparkFiles.get(self.name), folder), columns)


def _lay_out(rows: str, local: str) -> None:
    """A file's rows (the Parquet files Spark shipped) -> the file, once per executor: its
    Python workers take a lock, and the file appears whole."""
    os.makedirs(os.path.dirname(local), exist_ok=True)
    with open(local + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(local):
            return
        partial = f"{local}.{uuid.uuid4().hex}.tmp"
        table = pq.read_table(rows, columns=[C.SEQ, C.DATA])
        table = table.take(pc.sort_indices(table, [(C.SEQ, "ascending")]))
        with open(partial, "wb") as out:
            for piece in table.column(C.DATA).chunks:
                for value in piece:
                    out.write(value.as_buffer())
        os.replace(partial, local)


def _partition(file: str) -> str:
    """A file's folder among its dataset's rows: file=NAME, escaped as Spark escapes a partition
    value (our names use letters, digits, '-', '_', '.' and '/')."""
    return f"{C.FILE}={file.replace('%', '%25').replace('/', '%2F')}"


def _join(*parts: str) -> str:
    """A path of the non-empty parts (dataset "": the folder itself)."""
    return "/".join(p.rstrip("/") for p in parts if p)


def _parent(folder: str) -> tuple[str, str]:
    parent, _, name = folder.rstrip("/").rpartition("/")
    return parent, name


# --- in tasks ------------------------------------------------------------------------------------

def _local_task(files: TaskFiles, inputs: list[list[Ref]], body, batches) -> Iterator:
    for batch in batches:
        for t in batch.column("id").to_numpy():
            yield from body(int(t), Inputs(files, inputs[int(t)], None))


def _remote_task(files: TaskFiles, inputs: list[list[Ref]], body, batches) -> Iterator:
    """The task's partition: its marker and its files' rows -> body's rows."""
    task, pieces = None, {}
    for batch in batches:
        names = batch.column(C.FILE).to_pylist()
        seqs = batch.column(C.SEQ).to_pylist()
        data = batch.column(C.DATA)
        for i, name in enumerate(names):
            if name == _MARKER:
                if task is not None:  # Spark merged partitions: the files would go astray
                    raise RuntimeError(f"tasks {task} and {seqs[i]} of a job over {files.folder} "
                                       "ran as one: their partitions were merged")
                task = seqs[i]
            else:
                pieces.setdefault(name, []).append((seqs[i], data[i].as_buffer()))
    if task is None:
        return
    ordered = {name: [p for _, p in sorted(found, key=lambda x: x[0])]
               for name, found in pieces.items()}
    yield from body(task, Inputs(files, inputs[task], ordered))


def _binary(value) -> pa.Array:
    """A one-value binary array over a buffer, without a copy."""
    buffer = pa.py_buffer(value)
    offsets = pa.py_buffer(np.array([0, buffer.size], dtype=np.int32))
    return pa.Array.from_buffers(pa.binary(), 1, [None, offsets, buffer])


def _rows(name: str, seq: int, value) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array([name]), pa.array([seq], pa.int32()), _binary(value)],
        names=[C.FILE, C.SEQ, C.DATA])


def _bytes_rows(name: str, data: bytes | memoryview, piece: int, first: int = 0
                ) -> Iterator[pa.RecordBatch]:
    view = memoryview(data).cast("B")
    for k, lo in enumerate(range(0, max(len(view), 1), piece)):
        yield _rows(name, first + k, view[lo:lo + piece])


def _array_rows(name: str, array: np.ndarray, piece: int) -> Iterator[pa.RecordBatch]:
    """An array as rows of its .npy file's bytes: piece 0 the header, then its data."""
    array = np.ascontiguousarray(array)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    yield _rows(name, 0, header.getvalue())
    if array.nbytes:
        yield from _bytes_rows(name, array.reshape(-1).view(np.uint8), piece, first=1)


def _array_of(pieces: list) -> np.ndarray:
    """An array from its .npy file's pieces (_array_rows: the header alone in piece 0)."""
    header = io.BytesIO(bytes(pieces[0]))
    np.lib.format.read_magic(header)
    shape, fortran, dtype = np.lib.format.read_array_header_1_0(header)
    array = np.empty(shape, dtype, order="F" if fortran else "C")
    flat, at = array.reshape(-1, order="A").view(np.uint8), 0
    for piece in pieces[1:]:
        flat[at:at + piece.size] = np.frombuffer(piece, np.uint8)
        at += piece.size
    return array


def _table_rows(name: str, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: a table's batches -> rows of Arrow IPC streams under `name`."""
    for seq, batch in enumerate(batches):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        yield _rows(name, seq, sink.getvalue())


def _json(rows: list[tuple]) -> str:
    return json.dumps(rows, default=lambda value: value.item())  # numpy scalars too


def _report_batch(rows: list[tuple]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([_json(rows)])], names=["report"])

