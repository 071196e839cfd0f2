"""Walks from some nodes only: an update walks again from the nodes near its changes.

The start nodes are given by id and written once, per shard of the graph store, as the sorted
local rows of the shard's starts (`shard-NNNNN.npy`; `_starts.json`, written last, says the set
is complete). The engines walk those nodes' walks with the ids a full walk gives them (walk_id =
repetition x V + node) and the same random streams, so they are the very walks a full walk of the
graph writes for those nodes (tests/walk/test_starts.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.frames import partition_table
from spark_n2v.io.files import HadoopFiles, arrow_fs, load_array, save_array
from spark_n2v.walk import store
from spark_n2v.walk.store import GraphStore

META = "_starts.json"
_MASKS: dict[str, np.ndarray] = {}  # per Python worker: a start set's mask over every node


@dataclass(frozen=True)
class Starts:
    """A complete set of start nodes of one store: `nodes` of them, files in `path`."""

    path: str
    nodes: int

    def rows(self, shard: int) -> np.ndarray:
        """Shard's start nodes, as its local rows (sorted, int64)."""
        fs, local = arrow_fs(self._file(shard))
        if not fs.get_file_info(local).is_file:  # no start in this shard
            return np.zeros(0, np.int64)
        return load_array(self._file(shard))

    def mask(self, graph: GraphStore) -> np.ndarray:
        """Whether each node of the graph starts walks (V bools), built once per Python worker (the
        replicated engine, which holds the whole graph there anyway)."""
        if self.path not in _MASKS:
            mask = np.zeros(graph.nodes, np.bool_)
            for k in range(graph.shards):
                mask[self.rows(k) * graph.shards + k] = True
            _MASKS[self.path] = mask
        return _MASKS[self.path]

    def _file(self, shard: int) -> str:
        return f"{self.path}/{store.shard_name(shard)}.npy"

    @classmethod
    def open(cls, spark: SparkSession, path: str) -> Starts | None:
        meta = HadoopFiles(spark, path).read_json(f"{path}/{META}")
        return cls(path, meta["nodes"]) if meta else None


def node_ids(spark: SparkSession, graph: GraphStore) -> DataFrame:
    """Every node of the store: (node, id), read from the shards' id files by one task each."""
    body = functools.partial(_shard_ids, graph)
    return spark.range(0, graph.shards, 1, graph.shards).mapInArrow(
        body, f"{C.NODE} long, {C.ID} {graph.id_type}")


def _shard_ids(graph: GraphStore, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for k in batch.column("id").to_numpy():
            fs, path = arrow_fs(f"{graph.path}/{store.shard_name(int(k))}/ids.arrow")
            with fs.open_input_file(path) as handle:
                ids = pa.ipc.open_file(handle).read_all().column(0).combine_chunks()
            node = np.arange(len(ids), dtype=np.int64) * graph.shards + int(k)
            yield pa.RecordBatch.from_arrays([pa.array(node), ids], names=[C.NODE, C.ID])


def write(spark: SparkSession, graph: GraphStore, ids: DataFrame, path: str) -> Starts:
    """Start nodes (id; ids not in the graph are ignored) -> their files at path (rewritten)."""
    files = HadoopFiles(spark, path)
    files.delete(path)
    keys = store.partition_keys(spark, graph.shards)
    chosen = (node_ids(spark, graph).join(ids.select(C.ID).distinct(), C.ID, "left_semi")
              .select(C.NODE).repartition(graph.shards, store.on_shards(keys, F.col(C.NODE))))
    written = chosen.mapInArrow(functools.partial(_write_rows, graph, path), "nodes long")
    nodes = int(written.agg(F.sum("nodes")).first()[0] or 0)
    files.write_json(f"{path}/{META}", {"nodes": nodes})  # last: the set is complete
    return Starts(path, nodes)


def _write_rows(graph: GraphStore, path: str, batches: Iterator[pa.RecordBatch]
                ) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: start nodes of some shards -> each shard's file of local rows."""
    table = partition_table(batches)
    if table is None:
        return
    node = table.column(C.NODE).to_numpy()
    for k in np.unique(node % graph.shards):
        rows = np.sort(node[node % graph.shards == k] // graph.shards)
        save_array(f"{path}/{store.shard_name(int(k))}.npy", rows.astype(np.int64))
    yield pa.RecordBatch.from_arrays([pa.array([len(node)], pa.int64())], names=["nodes"])
