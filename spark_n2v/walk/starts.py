"""Walks from some nodes only: an update walks again from the nodes near its changes.

The start nodes are given by id and written once, per shard of the graph store, as the sorted
local rows of the shard's starts (`shard-NNNNN.npy`, files of io.taskfiles: in the set's folder on
local disk, else in a dataset of a unique name that Spark ships to the executors; `_starts.json`,
written last, says the set is complete and names it). The engines walk those nodes' walks with
the ids a full walk gives them (walk_id = repetition x V + node) and the same random streams, so
they are the very walks a full walk of the graph writes for those nodes
(tests/walk/test_starts.py).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.frames import partition_table
from spark_n2v.io.files import HadoopFiles
from spark_n2v.io.taskfiles import Outputs, Replica, TaskFiles
from spark_n2v.walk import store
from spark_n2v.walk.store import GraphStore

META = "_starts.json"
_MASKS: dict[str, np.ndarray] = {}  # per Python worker: a start set's mask over every node


@dataclass(frozen=True)
class Starts:
    """A complete set of start nodes of one store: `nodes` of them, files in `path` (readable by
    tasks through `replica`)."""

    path: str
    nodes: int
    replica: Replica

    def rows(self, shard: int) -> np.ndarray:
        """Shard's start nodes, as its local rows (sorted, int64)."""
        file = self.replica.path(f"{store.shard_name(shard)}.npy")
        if file is None:  # no start in this shard
            return np.zeros(0, np.int64)
        return np.load(file)

    def mask(self, graph: GraphStore) -> np.ndarray:
        """Whether each node of the graph starts walks (V bools), built once per Python worker (the
        replicated engine, which holds the whole graph there anyway)."""
        if self.path not in _MASKS:
            mask = np.zeros(graph.nodes, np.bool_)
            for k in range(graph.shards):
                mask[self.rows(k) * graph.shards + k] = True
            _MASKS[self.path] = mask
        return _MASKS[self.path]

    @classmethod
    def open(cls, spark: SparkSession, path: str) -> Starts | None:
        meta = HadoopFiles(spark, path).read_json(f"{path}/{META}")
        if not meta:
            return None
        return cls(path, meta["nodes"], TaskFiles(path).replicate(spark, meta["dataset"]))


def node_ids(spark: SparkSession, graph: GraphStore) -> DataFrame:
    """Every node of the store: (node, id), read from the shards' id files by one task each."""
    body = functools.partial(_shard_ids, graph)
    return spark.range(0, graph.shards, 1, graph.shards).mapInArrow(
        body, f"{C.NODE} long, {C.ID} {graph.id_type}")


def _shard_ids(graph: GraphStore, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for k in batch.column("id").to_numpy():
            ids = store.shard_ids(graph, int(k))
            node = np.arange(len(ids), dtype=np.int64) * graph.shards + int(k)
            yield pa.RecordBatch.from_arrays([pa.array(node), ids], names=[C.NODE, C.ID])


def write(spark: SparkSession, graph: GraphStore, ids: DataFrame, path: str) -> Starts:
    """Start nodes (id; ids not in the graph are ignored) -> their files at path (rewritten)."""
    files = HadoopFiles(spark, path)
    files.delete(path)
    keys = store.partition_keys(spark, graph.shards)
    chosen = (node_ids(spark, graph).join(ids.select(C.ID).distinct(), C.ID, "left_semi")
              .select(C.NODE).repartition(graph.shards, store.on_shards(keys, F.col(C.NODE))))
    task_files = TaskFiles(path)
    # shipped to the executors by name: unique in the application where it is not on local disk
    dataset = "" if task_files.local else f"starts-{uuid.uuid4().hex}"
    reports = task_files.map_writing(spark, chosen, functools.partial(_write_rows, graph),
                                     dataset, ["nodes"])
    nodes = sum(r["nodes"] for r in reports)
    files.write_json(f"{path}/{META}", {"nodes": nodes, "dataset": dataset})  # last: complete
    return Starts(path, nodes, task_files.replicate(spark, dataset))


def _write_rows(graph: GraphStore, batches: Iterator[pa.RecordBatch], out: Outputs
                ) -> Iterator[tuple[int]]:
    """Task body: start nodes of some shards -> each shard's file of local rows."""
    table = partition_table(batches)
    if table is None:
        return
    node = table.column(C.NODE).to_numpy()
    for k in np.unique(node % graph.shards):
        rows = np.sort(node[node % graph.shards == k] // graph.shards)
        out.array(store.shard_name(int(k)), rows.astype(np.int64))
    yield (len(node),)
