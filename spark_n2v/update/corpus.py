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

Each task reads one file in batches and writes one file whole (a retried task writes the same
rows: the file appears only when complete).
"""

from __future__ import annotations

import functools
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
from spark_n2v.io.files import HadoopFiles, arrow_fs, copy_file, parquet_output, read_parquet


@dataclass(frozen=True)
class Changes:
    """What the corpus tasks read besides the walks: Parquet folders of ids (id) and the two
    graphs' node counts."""

    again: str      # the nodes walked again: their previous walks are replaced
    new: str        # new nodes (no previous walks; they shift the places after them)
    vanished: str   # vanished nodes (their previous walks go; they shift the places after them)
    previous_nodes: int
    nodes: int


def write(spark: SparkSession, previous_walks: str, new_walks: str, target: str,
          changes: Changes, id_type: str) -> DataFrame:
    """Writes the corpus into the folder `target` (one file per input file) and returns how the
    token counts change (id, count: the replaced walks' tokens negative, the new walks'
    positive), to be summed with the previous counts. Lazy like any DataFrame: the files are
    written when it is computed, once."""
    files = ([("previous", f) for f in _data_files(spark, previous_walks)]
             + [("new", f) for f in _data_files(spark, new_walks)])
    body = functools.partial(_tasks, files, target, changes)
    return (spark.range(0, len(files), 1, max(1, len(files)))
            .mapInArrow(body, f"{C.ID} {id_type}, {C.COUNT} long"))


def counts(previous_counts: DataFrame, changed: DataFrame) -> DataFrame:
    """The new corpus's token counts: the previous ones (id, count) plus the changes; nodes left
    at 0 (vanished) are gone."""
    return (previous_counts.select(C.ID, C.COUNT).unionByName(changed)
            .groupBy(C.ID).agg(F.sum(C.COUNT).alias(C.COUNT)).where(F.col(C.COUNT) > 0))


def _data_files(spark: SparkSession, folder: str) -> list[str]:
    return [f"{folder}/{name}" for name in HadoopFiles(spark, folder).names(folder)
            if not name.startswith(("_", "."))]


def _tasks(files: list[tuple[str, str]], target: str, changes: Changes,
           batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for k in batch.column("id").to_numpy():
            kind, source = files[k]
            name = f"{target}/part-{kind}-{k:05d}.parquet"
            if kind == "new":
                yield from count_ids(_copy(source, name))
            else:
                yield from _negated(count_ids(_keep(source, name, changes)))


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


def _keep(source: str, name: str, changes: Changes) -> Iterator[pa.Table]:
    """A previous walks file without the walks it replaces (their tokens) or that start at a
    vanished node, the others renumbered."""
    fs, path = arrow_fs(source)
    with fs.open_input_file(path) as handle:
        file = pq.ParquetFile(handle)
        found = file.schema_arrow
        schema = pa.schema([found.field(C.WALK_ID), found.field(C.WALK)], found.metadata)
        id_type = schema.field(C.WALK).type.value_type
        again, new, vanished = (_ids(folder, id_type) for folder in
                                (changes.again, changes.new, changes.vanished))
        gone = pa.concat_arrays([again, vanished])
        shift = (_sorted(new), _sorted(vanished)) if len(new) or len(vanished) else None
        with parquet_output(name, schema) as writer:
            for batch in file.iter_batches(columns=[C.WALK_ID, C.WALK]):
                start = pc.list_element(batch.column(C.WALK), 0)
                dropped = pc.is_in(start, value_set=gone)
                yield _tokens(batch.filter(dropped))
                kept, stays = batch.filter(pc.invert(dropped)), start.filter(pc.invert(dropped))
                writer.write_batch(pa.record_batch(
                    [_renumbered(kept.column(C.WALK_ID), stays, shift, changes),
                     kept.column(C.WALK)], schema=schema))


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


def _ids(folder: str, id_type: pa.DataType) -> pa.Array:
    table = read_parquet(folder, [C.ID])
    if table is None or table.num_rows == 0:
        return pa.array([], id_type)
    return table.column(C.ID).combine_chunks().cast(id_type)


def _negated(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for b in batches:
        yield pa.record_batch([b.column(0), pc.negate(b.column(1))], names=[C.ID, C.COUNT])
