"""The graph store: the prepared graph as CSR shards, written once by Spark, memory-mapped by tasks.

Nodes are indexed 0..V-1 by the sort order of their ids (their rank). Shard k of S owns the nodes
v with v % S == k, at local row v // S: modulo, not ranges, so that hubs (often the first ids of a
generated or crawled graph) spread over the shards. Each shard is a folder of plain files:

    offsets.npy  int64, local rows + 1: row r's arcs are [offsets[r], offsets[r + 1])
    nbrs.npy     int32 (int64 past 2^31 nodes): out-neighbour indices, sorted within a row
    cum.npy      float64, weighted graphs only: cumulative normalised weights, last of a row 1.0
    ids.arrow    Arrow IPC file, one column: the id of each local row, in the input's type

`.npy` and Arrow IPC map into memory as they are, so every Python worker of an executor shares the
operating system's one cached copy of a file. `_store.json`, written last, describes the store and
says it is complete. `whole/` (replicated engine) is the same graph as one CSR in node order.

Tasks write and read the files through io.taskfiles: on local disk the folders above are the
store's own; elsewhere (HDFS, S3, ...) the shards are the dataset KEY/ and the whole graph the
dataset KEY-whole/ (KEY: the store's key, unique), which Spark ships to every executor once
(TaskFiles.replicate): a task maps the files it reads from the executor's disk.

Preparing is bit for bit what the previous engines did (ranks, duplicates merged with their weights
summed in ascending order from 0.0, self-loops dropped, cumulative weights summed row by row), so
the walks did not change.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_type

from spark_n2v import columns as C
from spark_n2v.frames import partition_table, rank_rows
from spark_n2v.io.edges import EdgeTable
from spark_n2v.io.files import HadoopFiles
from spark_n2v.io.taskfiles import Outputs, Replica, TaskFiles
from spark_n2v.walk.graph import GraphStats, row_cumulative
from spark_n2v.walk.kernels import Adjacency

META = "_store.json"
WHOLE = "whole"
_FORMAT = 1


@dataclass(frozen=True)
class GraphStore:
    """A complete store's description (its `_store.json`)."""

    path: str
    key: str            # unique per store written: names the executors' cached copies
    nodes: int
    shards: int
    id_type: str        # Spark SQL type of the ids
    bytes: int          # the shard files' total size: what a replicated executor maps
    stats: GraphStats
    replicas: tuple[tuple[str, Replica], ...] = ()  # (part, its files for tasks), see replicated

    @property
    def megabytes(self) -> float:
        return self.bytes / 2**20

    @property
    def files(self) -> TaskFiles:
        return TaskFiles(self.path)

    def dataset(self, part: str = "") -> str:
        """The dataset of the shards (part "") or of `whole`: the store's own folder on local
        disk, else KEY and KEY-whole (unique names: Spark ships them to executors by name)."""
        if self.files.local:
            return part
        return self.key if not part else f"{self.key}-{part}"

    def replicated(self, spark: SparkSession, part: str = "") -> GraphStore:
        """The store with its shards (part "") or `whole` readable by tasks (their files shipped
        to every executor when not on local disk)."""
        if part in dict(self.replicas):
            return self
        replica = self.files.replicate(spark, self.dataset(part))
        return dataclasses.replace(self, replicas=(*self.replicas, (part, replica)))

    def as_json(self) -> dict:
        return {"format": _FORMAT, "key": self.key, "nodes": self.nodes, "shards": self.shards,
                "id_type": self.id_type, "bytes": self.bytes, "stats": self.stats.as_dict()}

    @classmethod
    def open(cls, spark: SparkSession, path: str) -> GraphStore | None:
        """The store at path, or None if there is none (or an unfinished or older one)."""
        meta = HadoopFiles(spark, path).read_json(f"{path}/{META}")
        if not meta or meta.get("format") != _FORMAT:
            return None
        return cls(path=path, key=meta["key"], nodes=meta["nodes"], shards=meta["shards"],
                   id_type=meta["id_type"], bytes=meta["bytes"], stats=GraphStats(**meta["stats"])
                   ).replicated(spark)


def shard_name(k: int) -> str:
    return f"shard-{k:05d}"


def shard_rows(nodes: int, shards: int, k: int) -> int:
    """Local rows of shard k: the nodes k, k + S, k + 2S, ... below V."""
    return max(0, -(-(nodes - k) // shards))


# --- writing (Spark) -----------------------------------------------------------------------------

def partition_keys(spark: SparkSession, partitions: int) -> tuple[int, ...]:
    """For each partition k, a long that Spark's hash partitioning into `partitions` sends to k, so
    that repartition(S, on_shards(keys, node)) puts shard k's rows in partition k exactly: one shard
    per task (hashing the shard numbers themselves would put two in some tasks and none in others).
    Spark partitions by pmod(murmur3 hash, n), which F.hash computes."""
    sample = spark.range(64 * partitions).select(
        "id", F.expr(f"pmod(hash(id), {partitions})").alias("_k"))
    found = dict(sample.groupBy("_k").agg(F.min("id")).collect())  # one row per partition
    if len(found) < partitions:
        raise RuntimeError(f"no key for every one of {partitions} partitions")
    return tuple(int(found[k]) for k in range(partitions))


def on_shards(keys: tuple[int, ...], node: Column) -> Column:
    """The partition key of a node's shard (see partition_keys)."""
    # long values: Spark hashes an int and a long differently, and the keys were found as longs
    lookup = F.create_map(*[F.lit(x).cast("long") for k, key in enumerate(keys)
                            for x in (k, key)])
    return F.element_at(lookup, (node % len(keys)).cast("long"))


def index_ids(edges: DataFrame, partitions: int) -> tuple[DataFrame, int]:
    """Number the distinct ids 0..V-1 in sort order (their rank, so nothing depends on the
    partitioning). Returns (node, id), cached, and V."""
    ids = edges.select(F.col(C.SRC).alias(C.ID)).union(edges.select(F.col(C.DST).alias(C.ID)))
    indexed, total = rank_rows(ids.distinct(), [F.col(C.ID)], C.NODE, partitions)
    return indexed.select(C.NODE, C.ID), total


# Input rows up to which one task prepares the whole graph (ids ranked in numpy, every shard
# written by that task): a graph this small spends most of the spread-out path's ~20 Spark jobs
# waiting on the scheduler (1.5k nodes / 15k edges: 10 s of jobs and gaps, against ~1 s of work).
# One task holds the edges as Arrow arrays and sorts them: its Python worker peaked at 0.5, 1.0
# and 1.5 GB for 2M, 4M and 8M undirected edges of long ids. On 2 cores the one task was the
# faster up to at least 8M (2M / 4M / 8M edges: 5.5 / 10 / 14 s against the spread path's 13 /
# 18 / 34 s in a warm session).
ONE_TASK_EDGES = 4_000_000

_ARCS, _IDS = 0, 1  # what a row of the writers' reports counts
_REPORT = ["kind", "shard", "rows", "with_out_edges", "bytes"]  # a writer's report row


def write(spark: SparkSession, table: EdgeTable, directed: bool, weighted: bool, shards: int,
          path: str) -> GraphStore:
    """Checked edges (src, dst, weight; ids in the input's type) -> the store at path.

    Up to ONE_TASK_EDGES input rows, one task does it all; above, three shuffles of the edges (two
    joins to index them, one to their shards) and one of the ids, each shard built in numpy by the
    task that receives it. Both write the same files, bit for bit. Nothing graph-sized reaches the
    driver: it gets one small row per shard. Rewrites whatever unfinished store is at path.
    """
    files = HadoopFiles(spark, path)
    files.delete(path)
    id_type = table.edges.schema[C.SRC].dataType
    # what the store will be (GraphStore.dataset: where its files go), before its statistics
    store = GraphStore(path=path, key=uuid.uuid4().hex, nodes=0, shards=shards,
                       id_type=id_type.simpleString(), bytes=0, stats=None)
    write_all = _write_in_one_task if table.rows <= ONE_TASK_EDGES else _write_spread
    reports = write_all(spark, table.edges, directed, weighted, store)
    written = [r for r in reports if r["kind"] == _ARCS]
    named = [r for r in reports if r["kind"] == _IDS]
    num_nodes = sum(r["rows"] for r in named)
    with_arcs, with_ids = {r["shard"] for r in written}, {r["shard"] for r in named}
    # shards no task wrote (no out-edges, or no nodes): tiny, written by one task
    missing = [k for k in range(shards) if k not in with_arcs or k not in with_ids]
    if missing:
        body = functools.partial(_empty_shards, missing, num_nodes, shards, weighted, with_arcs,
                                 with_ids, to_arrow_type(id_type))
        reports += store.files.map_writing(spark, spark.range(1, numPartitions=1), body,
                                           store.dataset(), _REPORT)
    arc_count = sum(r["rows"] for r in written)
    stats = GraphStats.of(table, num_nodes, arc_count if directed else arc_count // 2,
                          num_nodes - sum(r["with_out_edges"] for r in written), directed,
                          weighted)
    store = dataclasses.replace(store, nodes=num_nodes, bytes=sum(r["bytes"] for r in reports),
                                stats=stats)
    files.write_json(f"{path}/{META}", store.as_json())  # last: the store is complete
    return store.replicated(spark)


def _empty_shards(missing: list[int], num_nodes: int, shards: int, weighted: bool,
                  with_arcs: set[int], with_ids: set[int], id_type: pa.DataType,
                  batches: Iterator[pa.RecordBatch], out: Outputs) -> Iterator[tuple]:
    """The files of the shards without out-edges or without nodes: empty rows."""
    for _ in batches:
        pass
    for k in missing:
        arrays = {}
        if k not in with_arcs:
            arrays = {"offsets": np.zeros(shard_rows(num_nodes, shards, k) + 1, np.int64),
                      "nbrs": np.zeros(0, _nbrs_type(num_nodes))}
            if weighted:
                arrays["cum"] = np.zeros(0, np.float64)
        for name, array in arrays.items():
            out.array(f"{shard_name(k)}/{name}", array)
        if k not in with_ids:
            out.file(f"{shard_name(k)}/ids.arrow", _ipc_file(pa.array([], id_type)))
        yield (_ARCS, k, 0, 0, sum(a.nbytes for a in arrays.values()))


def _write_spread(spark: SparkSession, edges: DataFrame, directed: bool, weighted: bool,
                  store: GraphStore) -> list[dict]:
    """The store written by many tasks: the writers' report rows."""
    shards = store.shards
    ids, num_nodes = index_ids(edges, shards)
    raw = edges.select(F.col(C.SRC).alias("_src_id"), F.col(C.DST).alias("_dst_id"), C.WEIGHT)
    src_ids = ids.select(F.col(C.ID).alias("_src_id"), F.col(C.NODE).alias(C.SRC))
    dst_ids = ids.select(F.col(C.ID).alias("_dst_id"), F.col(C.NODE).alias(C.DST))
    indexed = (raw.join(src_ids, "_src_id").join(dst_ids, "_dst_id")
               .select(C.SRC, C.DST, C.WEIGHT).where(F.col(C.SRC) != F.col(C.DST)))
    # Both arcs of an undirected edge: each arc merges the same input rows, whichever way round
    # they were written, so its merged weight is the undirected edge's.
    arcs = indexed if directed else indexed.union(
        indexed.select(F.col(C.DST).alias(C.SRC), F.col(C.SRC).alias(C.DST), C.WEIGHT))
    keys = partition_keys(spark, shards)
    files, dataset = store.files, store.dataset()
    written = files.map_writing(  # a report row per shard with out-edges
        spark, arcs.select(C.SRC, C.DST, *([C.WEIGHT] if weighted else []))
        .repartition(shards, on_shards(keys, F.col(C.SRC))),
        functools.partial(_write_shards, shards, num_nodes, weighted), dataset, _REPORT)
    named = files.map_writing(  # a report row per shard
        spark, ids.select(C.NODE, C.ID).repartition(shards, on_shards(keys, F.col(C.NODE))),
        functools.partial(_write_ids, shards), dataset, _REPORT)
    ids.unpersist()
    return written + named


def _write_in_one_task(spark: SparkSession, edges: DataFrame, directed: bool, weighted: bool,
                       store: GraphStore) -> list[dict]:
    """The store written by one task (a small graph): the writer's report rows."""
    body = functools.partial(_write_all_shards, store.shards, directed, weighted)
    return store.files.map_writing(  # two report rows per shard
        spark, edges.select(C.SRC, C.DST, *([C.WEIGHT] if weighted else [])).repartition(1),
        body, store.dataset(), _REPORT)


def _write_all_shards(shards: int, directed: bool, weighted: bool,
                      batches: Iterator[pa.RecordBatch], out: Outputs) -> Iterator[tuple]:
    """mapInArrow body: all the edges (src, dst[, weight]) -> every shard's files, as the spread
    path writes them: nodes numbered in the ids' sort order (Spark's: numbers by value, strings
    by their UTF-8 bytes, as Arrow sorts them), self-loops dropped, both arcs of an undirected
    edge."""
    table = partition_table(batches)
    if table is None:
        return
    ids = pc.unique(pa.concat_arrays([table.column(C.SRC).combine_chunks(),
                                      table.column(C.DST).combine_chunks()]))
    ids = ids.take(pc.sort_indices(ids))
    src = pc.index_in(table.column(C.SRC), value_set=ids).to_numpy().astype(np.int64)
    dst = pc.index_in(table.column(C.DST), value_set=ids).to_numpy().astype(np.int64)
    weight = table.column(C.WEIGHT).to_numpy().astype(np.float64) if weighted else None
    kept = src != dst
    src, dst = src[kept], dst[kept]
    weight = None if weight is None else weight[kept]
    if not directed:
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
        weight = None if weight is None else np.concatenate([weight, weight])
    yield from _shard_files(out, shards, len(ids), src, dst, weight)
    yield from _id_files(out, shards, np.arange(len(ids)), ids)


def _nbrs_type(num_nodes: int):
    return np.int32 if num_nodes < 2**31 else np.int64


def _write_shards(shards: int, num_nodes: int, weighted: bool,
                  batches: Iterator[pa.RecordBatch], out: Outputs) -> Iterator[tuple]:
    """Task body: arcs (src, dst[, weight]) -> each shard's CSR files (one shard per task, or more
    if the task was retried elsewhere: the files are the same). Writers report (kind, shard,
    rows, with_out_edges, bytes) per shard written."""
    table = partition_table(batches)
    if table is None:
        return
    yield from _shard_files(
        out, shards, num_nodes, table.column(C.SRC).to_numpy(), table.column(C.DST).to_numpy(),
        table.column(C.WEIGHT).to_numpy().astype(np.float64) if weighted else None)


def _shard_files(out: Outputs, shards: int, num_nodes: int, src: np.ndarray,
                 all_dst: np.ndarray, all_weight: np.ndarray | None) -> Iterator[tuple]:
    """Arcs (node indices; weights if weighted) -> the CSR files of the shards they leave from;
    a report row per shard."""
    shard_of = src % shards
    for k in np.unique(shard_of):
        mine = shard_of == k
        local, dst, weight = _merge(src[mine] // shards, all_dst[mine],
                                    None if all_weight is None else all_weight[mine])
        degrees = np.bincount(local, minlength=shard_rows(num_nodes, shards, int(k)))
        offsets = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int64)
        arrays = {"offsets": offsets, "nbrs": dst.astype(_nbrs_type(num_nodes))}
        if all_weight is not None:
            arrays["cum"] = row_cumulative(weight, offsets)
        for name, array in arrays.items():
            out.array(f"{shard_name(int(k))}/{name}", array)
        yield (_ARCS, int(k), len(dst), int((degrees > 0).sum()),
               sum(a.nbytes for a in arrays.values()))


def _merge(local: np.ndarray, dst: np.ndarray, weight: np.ndarray | None):
    """Distinct (local, dst) arcs sorted by row then neighbour and, if weighted, each arc's weights
    summed in ascending order from 0.0 (bit for bit the earlier engines' sum)."""
    order = np.lexsort((dst, local) if weight is None else (weight, dst, local))
    local, dst = local[order], dst[order]
    first = np.flatnonzero(np.concatenate([[True], (local[1:] != local[:-1])
                                           | (dst[1:] != dst[:-1])]))
    if weight is None:
        return local[first], dst[first], None
    weight = weight[order]
    counts = np.diff(np.append(first, len(local)))
    total = 0.0 + weight[first]
    for extra in range(1, int(counts.max(initial=1))):
        more = np.flatnonzero(counts > extra)
        total[more] += weight[first[more] + extra]
    return local[first], dst[first], total


def _write_ids(shards: int, batches: Iterator[pa.RecordBatch], out: Outputs
               ) -> Iterator[tuple]:
    """Task body: (node, id) -> each shard's ids.arrow."""
    table = partition_table(batches)
    if table is None:
        return
    yield from _id_files(out, shards, table.column(C.NODE).to_numpy(),
                         table.column(C.ID).combine_chunks())


def _id_files(out: Outputs, shards: int, node: np.ndarray, ids: pa.Array) -> Iterator[tuple]:
    """(node, id) pairs -> the ids.arrow of the shards that own the nodes, in local-row order; a
    report row per shard."""
    shard_of = node % shards
    for k in np.unique(shard_of):
        mine = np.flatnonzero(shard_of == k)
        mine = mine[np.argsort(node[mine], kind="stable")]
        column = ids.take(pa.array(mine))
        out.file(f"{shard_name(int(k))}/ids.arrow", _ipc_file(column))
        yield (_IDS, int(k), len(column), 0, column.nbytes)


def _ipc_file(column: pa.Array) -> pa.Buffer:
    """One column `id` as the bytes of an Arrow IPC file (memory-mappable)."""
    batch = pa.record_batch([column], names=[C.ID])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


# --- reading (in tasks) --------------------------------------------------------------------------

@dataclass(frozen=True)
class Csr:
    """Memory-mapped CSR arrays: row r's neighbours are nbrs[indptr[r]:indptr[r + 1]]."""

    indptr: np.ndarray
    nbrs: np.ndarray
    cum: np.ndarray | None
    ids: pa.Array

    def adjacency(self) -> Adjacency:
        starts = self.indptr[:-1]
        return Adjacency(self.nbrs, starts, np.diff(self.indptr), self.cum,
                         None if self.cum is None else starts)


_OPENED: dict[tuple[str, str], tuple[Csr, Adjacency]] = {}  # per Python worker, reused by tasks


def shard(store: GraphStore, k: int) -> tuple[Csr, Adjacency]:
    """Shard k, mapped once per Python worker (the executor's page cache holds one copy)."""
    return _opened(store, shard_name(k))


def whole(store: GraphStore) -> tuple[Csr, Adjacency]:
    """The whole graph in node order (store/whole, see build_whole), mapped once per worker."""
    return _opened(store, WHOLE)


def _opened(store: GraphStore, name: str) -> tuple[Csr, Adjacency]:
    if (store.key, name) not in _OPENED:
        # the shard's or the whole graph's files, from the store's replica (see replicated)
        part, prefix = (WHOLE, "") if name == WHOLE else ("", f"{name}/")
        replica = dict(store.replicas)[part]
        csr = Csr(_map(replica.path(f"{prefix}offsets.npy")),
                  _map(replica.path(f"{prefix}nbrs.npy")),
                  _map(replica.path(f"{prefix}cum.npy")) if store.stats.weighted else None,
                  _map_ids(replica.path(f"{prefix}ids.arrow")))
        _OPENED[(store.key, name)] = (csr, csr.adjacency())
    return _OPENED[(store.key, name)]


def shard_ids(store: GraphStore, k: int) -> pa.Array:
    """Shard k's ids, in local-row order (mapped)."""
    return _map_ids(dict(store.replicas)[""].path(f"{shard_name(k)}/ids.arrow"))


def _map(path: str) -> np.ndarray:
    """A .npy file mapped read-only, as a plain ndarray (np.memmap's subclass slows indexing)."""
    return np.asarray(np.load(path, mmap_mode="r"))


def _map_ids(path: str) -> pa.Array:
    reader = pa.ipc.open_file(pa.memory_map(path, "r"))
    column = reader.read_all().column(0)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def build_whole(spark: SparkSession, store: GraphStore) -> GraphStore:
    """Write the store's whole graph: the shards interleaved into one CSR in node order (row v =
    node v), by one task (the graph fits an executor, or the replicated engine would not be
    walking it). Returns the store with it readable by tasks."""
    done = f"{store.path}/_{WHOLE}.json"
    files = HadoopFiles(spark, store.path)
    if not files.exists(done):
        spark.sparkContext.setJobDescription(
            "spark-n2v prepare: lay the store out for one executor")
        store.files.map_writing(spark, spark.range(1, numPartitions=1),
                                functools.partial(_build_whole, store), store.dataset(WHOLE),
                                ["done"], replace=True)
        files.write_json(done, {"key": store.key})  # last: the whole graph is complete
    return store.replicated(spark, WHOLE)


def _build_whole(store: GraphStore, batches: Iterator[pa.RecordBatch], out: Outputs
                 ) -> Iterator[tuple[int]]:
    for _ in batches:
        pass
    S, V = store.shards, store.nodes
    parts = [shard(store, k)[0] for k in range(S)]
    degrees = np.zeros(V, dtype=np.int64)
    for k, part in enumerate(parts):
        degrees[k::S] = np.diff(part.indptr)
    indptr = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int64)
    nbrs = np.empty(int(indptr[-1]), dtype=_nbrs_type(V))
    cum = np.empty(len(nbrs), dtype=np.float64) if store.stats.weighted else None
    for k, part in enumerate(parts):
        rows_deg = np.diff(part.indptr)
        local = np.repeat(np.arange(len(rows_deg)), rows_deg)
        at = indptr[k::S][:len(rows_deg)][local] + (np.arange(len(local)) - part.indptr[local])
        nbrs[at] = part.nbrs
        if cum is not None:
            cum[at] = part.cum
    # ids in node order: node v is row v // S of shard v % S
    base = np.concatenate([[0], np.cumsum([len(p.ids) for p in parts])])
    nodes = np.arange(V)
    ids = pa.concat_arrays([p.ids for p in parts]).take(pa.array(base[nodes % S] + nodes // S))
    out.array("offsets", indptr)
    out.array("nbrs", nbrs)
    if cum is not None:
        out.array("cum", cum)
    out.file("ids.arrow", _ipc_file(ids))
    yield (1,)

