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

Preparing is bit for bit what the previous engines did (ranks, duplicates merged with their weights
summed in ascending order from 0.0, self-loops dropped, cumulative weights summed row by row), so
the walks did not change.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import tempfile
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
from spark_n2v.io.files import HadoopFiles, arrow_fs, is_local, local_path, save_array, save_arrow
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

    @property
    def megabytes(self) -> float:
        return self.bytes / 2**20

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
                   id_type=meta["id_type"], bytes=meta["bytes"], stats=GraphStats(**meta["stats"]))


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
_REPORT = "kind int, shard int, rows long, with_out_edges long, bytes long"


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
    write_all = _write_in_one_task if table.rows <= ONE_TASK_EDGES else _write_spread
    reports = write_all(spark, table.edges, directed, weighted, shards, path)
    written = [r for r in reports if r["kind"] == _ARCS]
    named = [r for r in reports if r["kind"] == _IDS]
    num_nodes = sum(r["rows"] for r in named)
    size = sum(r["bytes"] for r in reports)
    with_arcs, with_ids = {r["shard"] for r in written}, {r["shard"] for r in named}
    for k in range(shards):  # shards no task wrote (no out-edges, or no nodes): tiny, written here
        folder = f"{path}/{shard_name(k)}"
        if k not in with_arcs:
            save_array(f"{folder}/offsets.npy",
                       np.zeros(shard_rows(num_nodes, shards, k) + 1, np.int64))
            save_array(f"{folder}/nbrs.npy", np.zeros(0, _nbrs_type(num_nodes)))
            if weighted:
                save_array(f"{folder}/cum.npy", np.zeros(0, np.float64))
        if k not in with_ids:
            save_arrow(f"{folder}/ids.arrow", pa.array([], to_arrow_type(id_type)), C.ID)
    arc_count = sum(r["rows"] for r in written)
    stats = GraphStats.of(table, num_nodes, arc_count if directed else arc_count // 2,
                          num_nodes - sum(r["with_out_edges"] for r in written), directed,
                          weighted)
    store = GraphStore(path=path, key=uuid.uuid4().hex, nodes=num_nodes, shards=shards,
                       id_type=id_type.simpleString(), bytes=size, stats=stats)
    files.write_json(f"{path}/{META}", store.as_json())  # last: the store is complete
    return store


def _write_spread(spark: SparkSession, edges: DataFrame, directed: bool, weighted: bool,
                  shards: int, path: str) -> list:
    """The store written by many tasks: the writers' report rows."""
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
    written = (arcs.select(C.SRC, C.DST, *([C.WEIGHT] if weighted else []))
               .repartition(shards, on_shards(keys, F.col(C.SRC)))
               .mapInArrow(functools.partial(_write_shards, path, shards, num_nodes, weighted),
                           _REPORT)
               .collect())  # one row per shard with out-edges
    named = (ids.select(C.NODE, C.ID).repartition(shards, on_shards(keys, F.col(C.NODE)))
             .mapInArrow(functools.partial(_write_ids, path, shards), _REPORT)
             .collect())  # one row per shard
    ids.unpersist()
    return written + named


def _write_in_one_task(spark: SparkSession, edges: DataFrame, directed: bool, weighted: bool,
                       shards: int, path: str) -> list:
    """The store written by one task (a small graph): the writer's report rows."""
    body = functools.partial(_write_all_shards, path, shards, directed, weighted)
    return (edges.select(C.SRC, C.DST, *([C.WEIGHT] if weighted else [])).repartition(1)
            .mapInArrow(body, _REPORT).collect())  # two rows per shard


def _write_all_shards(path: str, shards: int, directed: bool, weighted: bool,
                      batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
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
    rows = _shard_files(path, shards, len(ids), src, dst, weight)
    rows += _id_files(path, shards, np.arange(len(ids)), ids)
    yield _report(rows)


def _nbrs_type(num_nodes: int):
    return np.int32 if num_nodes < 2**31 else np.int64


def _report(rows: list[tuple]) -> pa.RecordBatch:
    """The writers' report: (kind, shard, rows, with_out_edges, bytes) per shard written."""
    kind, k, count, with_out, size = (np.array(c, dtype=np.int64) for c in zip(*rows))
    return pa.RecordBatch.from_arrays(
        [pa.array(kind.astype(np.int32)), pa.array(k.astype(np.int32)), pa.array(count),
         pa.array(with_out), pa.array(size)], names=["kind", "shard", "rows", "with_out_edges",
                                                     "bytes"])


def _write_shards(path: str, shards: int, num_nodes: int, weighted: bool,
                  batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: arcs (src, dst[, weight]) -> each shard's CSR files (one shard per task,
    or more if the task was retried elsewhere: the files are the same)."""
    table = partition_table(batches)
    if table is None:
        return
    yield _report(_shard_files(
        path, shards, num_nodes, table.column(C.SRC).to_numpy(), table.column(C.DST).to_numpy(),
        table.column(C.WEIGHT).to_numpy().astype(np.float64) if weighted else None))


def _shard_files(path: str, shards: int, num_nodes: int, src: np.ndarray, all_dst: np.ndarray,
                 all_weight: np.ndarray | None) -> list[tuple]:
    """Arcs (node indices; weights if weighted) -> the CSR files of the shards they leave from;
    a report row per shard."""
    out = []
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
            save_array(f"{path}/{shard_name(int(k))}/{name}.npy", array)
        out.append((_ARCS, int(k), len(dst), int((degrees > 0).sum()),
                    sum(a.nbytes for a in arrays.values())))
    return out


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


def _write_ids(path: str, shards: int, batches: Iterator[pa.RecordBatch]
               ) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: (node, id) -> each shard's ids.arrow."""
    table = partition_table(batches)
    if table is None:
        return
    yield _report(_id_files(path, shards, table.column(C.NODE).to_numpy(),
                            table.column(C.ID).combine_chunks()))


def _id_files(path: str, shards: int, node: np.ndarray, ids: pa.Array) -> list[tuple]:
    """(node, id) pairs -> the ids.arrow of the shards that own the nodes, in local-row order; a
    report row per shard."""
    out = []
    shard_of = node % shards
    for k in np.unique(shard_of):
        mine = np.flatnonzero(shard_of == k)
        mine = mine[np.argsort(node[mine], kind="stable")]
        column = ids.take(pa.array(mine))
        save_arrow(f"{path}/{shard_name(int(k))}/ids.arrow", column, C.ID)
        out.append((_IDS, int(k), len(column), 0, column.nbytes))
    return out


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
        folder = _readable(store, name)
        cum_path = os.path.join(folder, "cum.npy")
        csr = Csr(_map(os.path.join(folder, "offsets.npy")),
                  _map(os.path.join(folder, "nbrs.npy")),
                  _map(cum_path) if store.stats.weighted else None,
                  _map_ids(os.path.join(folder, "ids.arrow")))
        _OPENED[(store.key, name)] = (csr, csr.adjacency())
    return _OPENED[(store.key, name)]


def _map(path: str) -> np.ndarray:
    """A .npy file mapped read-only, as a plain ndarray (np.memmap's subclass slows indexing)."""
    return np.asarray(np.load(path, mmap_mode="r"))


def _map_ids(path: str) -> pa.Array:
    reader = pa.ipc.open_file(pa.memory_map(path, "r"))
    column = reader.read_all().column(0)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _readable(store: GraphStore, name: str) -> str:
    """A local folder holding the part: the store's own on a local file system, else a copy in the
    executor's temporary folder, made once per executor (a lock keeps its workers from racing)."""
    folder = f"{store.path}/{name}"
    if is_local(folder):
        return local_path(folder)
    cache = os.path.join(tempfile.gettempdir(), "spark-n2v-store",
                         hashlib.sha256(store.key.encode()).hexdigest()[:16], name)
    done = os.path.join(cache, "_copied")
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    with open(cache + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(done):
            fs, remote = arrow_fs(folder)
            os.makedirs(cache, exist_ok=True)
            for info in fs.get_file_info(pa.fs.FileSelector(remote)):
                with fs.open_input_stream(info.path) as src, \
                        open(os.path.join(cache, info.base_name), "wb") as dst:
                    dst.write(src.read())
            open(done, "w").close()
    return cache


def build_whole(spark: SparkSession, store: GraphStore) -> None:
    """Write store/whole: the shards interleaved into one CSR in node order (row v = node v), by
    one task (the graph fits an executor, or the replicated engine would not be walking it)."""
    files = HadoopFiles(spark, store.path)
    if files.exists(f"{store.path}/{WHOLE}/ids.arrow"):
        return
    spark.sparkContext.setJobDescription("spark-n2v prepare: lay the store out for one executor")
    spark.range(1, numPartitions=1).mapInArrow(
        functools.partial(_build_whole, store), "done int").collect()  # one row


def _build_whole(store: GraphStore, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
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
    folder = f"{store.path}/{WHOLE}"
    save_array(f"{folder}/offsets.npy", indptr)
    save_array(f"{folder}/nbrs.npy", nbrs)
    if cum is not None:
        save_array(f"{folder}/cum.npy", cum)
    save_arrow(f"{folder}/ids.arrow", ids, C.ID)  # last: build_whole checks for it
    yield pa.RecordBatch.from_arrays([pa.array([1], pa.int32())], names=["done"])

