"""An update's corpus: the previous walks it keeps, renumbered for the new graph, and the new
walks, written by Python tasks that read and write the Parquet files with pyarrow, counting the
tokens the corpus loses and gains on the way.

A run numbers walk r of node v (v: the node's place in the sorted ids of V nodes) r x V + v, so a
previous walk's id says where its start was in the previous graph: v = walk_id mod V0. In the new
graph the node's place moves by the new ids sorted before it less the vanished ones, both small
sets. A task thus needs only the changed nodes, never the graph's ids (Spark's plan, a join of
every previous walk to the new graph's ids and to the walked-again starts, then a second read of
the previous walks to count the replaced ones' tokens, decoded each walk array in the JVM twice:
~14 s and ~10 s of the 200k-node benchmark graph's update).

On local disk each task reads one file in batches and writes one file whole (a retried task
writes the same rows: the file appears only when complete). Elsewhere (HDFS, S3: any storage Spark
reaches) Spark reads and writes the walks and the tasks only transform batches; the changed ids go
to every executor once (TaskFiles.replicate), so the executors need nothing but Spark.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.frames import count_ids
from spark_n2v.io.files import HadoopFiles, arrow_fs, copy_file, is_local, parquet_output
from spark_n2v.io.taskfiles import Replica, TaskFiles

AGAIN = "again"  # the changes' folder of the nodes walked again (beside C.NEW and C.VANISHED)


@dataclass(frozen=True)
class Changes:
    """What the corpus tasks read besides the walks: the Parquet folders of ids (id) in `folder`
    (AGAIN: the nodes walked again, whose previous walks are replaced; C.NEW: new nodes, with no
    previous walks, that shift the places after them; C.VANISHED: their previous walks go, and
    they shift the places after them) and the two graphs' node counts."""

    folder: str
    previous_nodes: int
    nodes: int


def write(spark: SparkSession, previous_walks: str, new_walks: str, target: str,
          changes: Changes, id_type: str) -> DataFrame:
    """Writes the corpus into the folder `target` and returns how the token counts change (id,
    count: the replaced walks' tokens negative, the new walks' positive), to be summed with the
    previous counts. On local disk lazy like any DataFrame (the files are written when it is
    computed, once, one per input file); elsewhere the walks are written before this returns."""
    if not all(is_local(p) for p in (previous_walks, new_walks, target, changes.folder)):
        return _write_through_spark(spark, previous_walks, new_walks, target, changes)
    ids = TaskFiles(changes.folder).replicate(spark, "")
    files = ([("previous", f) for f in _data_files(spark, previous_walks)]
             + [("new", f) for f in _data_files(spark, new_walks)])
    body = functools.partial(_tasks, files, target, changes, ids)
    return (spark.range(0, len(files), 1, max(1, len(files)))
            .mapInArrow(body, f"{C.ID} {id_type}, {C.COUNT} long"))


def _write_through_spark(spark: SparkSession, previous_walks: str, new_walks: str, target: str,
                         changes: Changes) -> DataFrame:
    """The corpus where Spark does the I/O: the previous walks kept and renumbered by tasks over
    Spark's batches, then the new walks appended; the counts read the walks again (two passes
    where the local tasks make one, the price of writing through Spark)."""
    ids = _shipped(spark, changes)
    previous = spark.read.parquet(previous_walks).select(C.WALK_ID, C.WALK)
    new = spark.read.parquet(new_walks).select(C.WALK_ID, C.WALK)
    schema = previous.schema
    previous.mapInArrow(functools.partial(_kept_batches, changes, ids), schema
                        ).write.mode("overwrite").parquet(target)
    new.write.mode("append").parquet(target)
    id_type = schema[C.WALK].dataType.elementType.simpleString()
    dropped = previous.mapInArrow(functools.partial(_dropped_counts, changes, ids),
                                  f"{C.ID} {id_type}, {C.COUNT} long")
    added = new.select(F.explode(C.WALK).alias(C.ID)).groupBy(C.ID).agg(
        F.count(F.lit(1)).alias(C.COUNT))
    return dropped.unionByName(added)


def _shipped(spark: SparkSession, changes: Changes) -> Replica:
    """The changed ids on every executor: a copy under a name of its own (Spark ships a name
    once per application)."""
    files = TaskFiles(changes.folder)
    dataset = f"corpus-ids-{uuid.uuid4().hex[:12]}"
    for name in (AGAIN, C.NEW, C.VANISHED):
        (spark.read.parquet(f"{changes.folder}/{name}").select(C.ID).coalesce(1)
         .write.parquet(f"{changes.folder}/{dataset}/{name}"))
    return files.replicate(spark, dataset)


def counts(previous_counts: DataFrame, changed: DataFrame) -> DataFrame:
    """The new corpus's token counts: the previous ones (id, count) plus the changes; nodes left
    at 0 (vanished) are gone."""
    return (previous_counts.select(C.ID, C.COUNT).unionByName(changed)
            .groupBy(C.ID).agg(F.sum(C.COUNT).alias(C.COUNT)).where(F.col(C.COUNT) > 0))


def _data_files(spark: SparkSession, folder: str) -> list[str]:
    return [f"{folder}/{name}" for name in HadoopFiles(spark, folder).names(folder)
            if not name.startswith(("_", "."))]


def _tasks(files: list[tuple[str, str]], target: str, changes: Changes, ids: Replica,
           batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for k in batch.column("id").to_numpy():
            kind, source = files[k]
            name = f"{target}/part-{kind}-{k:05d}.parquet"
            if kind == "new":
                yield from count_ids(_copy(source, name))
            else:
                yield from _negated(count_ids(_keep(source, name, changes, ids)))


def _batches(source: str) -> Iterator[pa.RecordBatch]:
    fs, path = arrow_fs(source)
    with fs.open_input_file(path) as handle:
        yield from pq.ParquetFile(handle).iter_batches(columns=[C.WALK_ID, C.WALK])


def _tokens(walks: pa.RecordBatch) -> pa.Table:
    return pa.table({C.ID: pc.list_flatten(walks.column(C.WALK))})


def _copy(source: str, name: str) -> Iterator[pa.Table]:
    """A new walks file, as it is: its tokens."""
    copy_file(source, name)
    for batch in _batches(source):
        yield _tokens(batch)


@dataclass(frozen=True)
class _Sorter:
    """How a task sorts a previous walk: dropped if its start is in `gone` (walked again or
    vanished), else renumbered (shift: see _renumbered)."""

    changes: Changes
    gone: pa.Array
    shift: tuple[np.ndarray, np.ndarray] | None

    @classmethod
    def of(cls, changes: Changes, ids: Replica, id_type: pa.DataType) -> "_Sorter":
        again, new, vanished = (_ids(ids, name, id_type) for name in (AGAIN, C.NEW, C.VANISHED))
        shift = (_sorted(new), _sorted(vanished)) if len(new) or len(vanished) else None
        return cls(changes, pa.concat_arrays([again, vanished]), shift)

    def split(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[pa.Array]]:
        """A batch of walks -> the dropped ones, and the kept ones' columns renumbered."""
        start = pc.list_element(batch.column(C.WALK), 0)
        dropped = pc.is_in(start, value_set=self.gone)
        kept, stays = batch.filter(pc.invert(dropped)), start.filter(pc.invert(dropped))
        return batch.filter(dropped), [
            _renumbered(kept.column(C.WALK_ID), stays, self.shift, self.changes),
            kept.column(C.WALK)]


def _keep(source: str, name: str, changes: Changes, ids: Replica) -> Iterator[pa.Table]:
    """A previous walks file without the walks it replaces (their tokens) or that start at a
    vanished node, the others renumbered."""
    fs, path = arrow_fs(source)
    with fs.open_input_file(path) as handle:
        file = pq.ParquetFile(handle)
        found = file.schema_arrow
        schema = pa.schema([found.field(C.WALK_ID), found.field(C.WALK)], found.metadata)
        sorter = _Sorter.of(changes, ids, schema.field(C.WALK).type.value_type)
        with parquet_output(name, schema) as writer:
            for batch in file.iter_batches(columns=[C.WALK_ID, C.WALK]):
                dropped, kept = sorter.split(batch)
                yield _tokens(dropped)
                writer.write_batch(pa.record_batch(kept, schema=schema))


def _kept_batches(changes: Changes, ids: Replica,
                  batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Spark's batches of previous walks -> the kept ones, renumbered."""
    sorter = None
    for batch in batches:
        sorter = sorter or _Sorter.of(changes, ids, batch.schema.field(C.WALK).type.value_type)
        yield pa.record_batch(sorter.split(batch)[1], schema=batch.schema)


def _dropped_counts(changes: Changes, ids: Replica,
                    batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Spark's batches of previous walks -> the dropped ones' token counts, negated."""
    def dropped() -> Iterator[pa.Table]:
        sorter = None
        for batch in batches:
            sorter = sorter or _Sorter.of(changes, ids,
                                          batch.schema.field(C.WALK).type.value_type)
            yield _tokens(sorter.split(batch)[0])
    yield from _negated(count_ids(dropped()))


def _renumbered(walk_ids: pa.Array, starts: pa.Array,
                shift: tuple[np.ndarray, np.ndarray] | None, changes: Changes) -> pa.Array:
    """Walk ids r x V0 + v -> r x V + v', v' the start's place among the new graph's ids: v plus
    the new ids sorted before it less the vanished ones (shift: both sorted; None if none)."""
    walk_id = walk_ids.to_numpy()
    repetition, place = walk_id // changes.previous_nodes, walk_id % changes.previous_nodes
    if shift is not None:
        start = starts.to_numpy(zero_copy_only=False)
        new, vanished = shift
        place = (place + np.searchsorted(new, start, side="left")
                 - np.searchsorted(vanished, start, side="left"))
    return pa.array(repetition * changes.nodes + place, pa.int64())


def _sorted(ids: pa.Array) -> np.ndarray:
    """Ids in the store's order (numbers by value, strings by their UTF-8 bytes, which is
    Python's code-point order, so numpy's searchsorted agrees)."""
    return ids.take(pc.sort_indices(ids)).to_numpy(zero_copy_only=False)


def _ids(ids: Replica, name: str, id_type: pa.DataType) -> pa.Array:
    table = ids.table(name, [C.ID])
    if table is None or table.num_rows == 0:
        return pa.array([], id_type)
    return table.column(C.ID).combine_chunks().cast(id_type)


def _negated(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for b in batches:
        yield pa.record_batch([b.column(0), pc.negate(b.column(1))], names=[C.ID, C.COUNT])
