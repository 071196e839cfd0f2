"""The sharded engine: for graphs no executor holds. Each step moves the walkers, never the graph.

The graph store's shard k (the nodes v with v % S == k) is walked by partition k's task, which
memory-maps it once per Python worker. Each step is one Spark job: phase A
(`kernels.propose_batch`) runs in the shard of each walker's node and decides most candidates
there; only when q != 1 do the walkers with undecided candidates (is prev -> x an edge?) go to
prev's shard for phase B (`kernels.resolve_batch`), and the decided ones ride along to the shard
of their next node. Phase A draws until every walker holds an accepted candidate, so every live
walker moves once per step and a walk of L nodes takes L - 1 jobs. Memory per task: one shard
(mapped) and its walkers.

Walkers travel in packets: the walker rows one task sends to one shard, as one Arrow IPC stream
in a binary column. A step's shuffles then move a few large values per pair of tasks instead of a
row per walker, and the Python workers exchange a few buffers with the JVM instead of converting
every walker to and from Spark rows: with a row per walker, that plumbing was about 80% of a
step (event log, 1M walkers: 5 core-s a step, of which the kernels took about 1).

Each step's packets are written to Parquet (the step file): that cuts the lineage and is the
resume point. It holds two kinds: walkers packets (walk_id, prev, cur) for the shard of their node,
which the next step reads, and visits packets (walk_id, visited: the id of the node each walker
left, decoded in that node's shard) for the block of walk ids they belong to. The walks are
assembled at the end from the visits alone: one shuffle by block, and each task lays its block out
by position (a counting sort), with no sort and no regrouping of visits.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import ClassVar, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import Accumulator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.config import WalkConfig
from spark_n2v.progress import StepProgress, describe
from spark_n2v.record import ResumePoints
from spark_n2v.walk import kernels, store
from spark_n2v.walk.engines import Engine, PreparedGraph
from spark_n2v.walk.graph import GraphStats
from spark_n2v.walk.starts import Starts

log = logging.getLogger(__name__)

_RESUME_STATE = "_walk.json"  # the steps written so far: where a rerun resumes
# Visits per assembly task at most (it lays them out in numpy).
ASSEMBLE_STEPS = 4_000_000
NONE = -1                   # a packet's shard (visits) or block (walkers): it has none
PACKETS = f"{C.SHARD} int, {C.BLOCK} int, {C.STEP} int, {C.PACKET} binary"
_LOOP_CONF = {
    # The loop's shuffles are explicit repartitions onto the shards' partitions: adaptive
    # execution must not coalesce them, and re-planning every step only adds latency.
    "spark.sql.adaptive.enabled": "false",
    # Packets per Arrow batch into Python: 16 packets (Packing.packet_rows rows each) stay far
    # below the 2 GB a batch's binary column can hold.
    "spark.sql.execution.arrow.maxRecordsPerBatch": "16",
}
# Walks per batch handed back to the JVM by the assembly (walks x length ids per batch).
_OUT_WALKS = 4096


@dataclass(frozen=True)
class Packing:
    """Rows per packet and per kernel call, at most (tests make them tiny to cross the bounds)."""

    packet_rows: int = 1 << 18  # a few MB a packet
    chunk_rows: int = 1 << 20   # walkers per kernel call


class ShardedEngine(Engine):
    name = "sharded"

    def open(self, spark: SparkSession, graph: store.GraphStore, cfg: WalkConfig) -> ShardedGraph:
        return ShardedGraph(graph, graph.stats, store.partition_keys(spark, graph.shards))


@dataclass(frozen=True)
class ShardedGraph(PreparedGraph):
    engine: ClassVar[str] = ShardedEngine.name
    store: store.GraphStore
    stats: GraphStats
    keys: tuple[int, ...]  # store.partition_keys
    packing: Packing = Packing()

    def release(self) -> None:
        """Nothing held: the shards are files, mapped by the tasks that read them."""

    def write_walks(self, spark: SparkSession, cfg: WalkConfig, walks_dir: str, work_dir: str,
                    starts: Starts | None = None) -> None:
        law = kernels.StepLaw(cfg.return_p, cfg.inout_q, cfg.seed,
                              symmetric=not self.stats.directed)
        saved = {key: spark.conf.get(key) for key in _LOOP_CONF}
        for key, value in _LOOP_CONF.items():
            spark.conf.set(key, value)
        try:
            steps = self._iterate(spark, cfg, law, work_dir, starts)
            describe(spark, "spark-n2v walk: assemble and write walks")
            self.assemble(spark, steps, cfg, starts).write.mode("overwrite").parquet(walks_dir)
        finally:
            for key, value in saved.items():
                spark.conf.set(key, value)

    # --- the step loop ---------------------------------------------------------------------------

    def _iterate(self, spark: SparkSession, cfg: WalkConfig, law: kernels.StepLaw,
                 work_dir: str, starts: Starts | None) -> list[str]:
        """Move every walker to the end of its walk, one job per step; returns the step files.

        Each step's file is a resume point (record.ResumePoints): a rerun over the same work
        folder continues after the last one written, with the same walks (they depend only on the
        seed, the walk ids and the steps)."""
        points = ResumePoints(spark, work_dir, _RESUME_STATE)
        done = points.done()
        paths = [points.path(part["name"]) for part in done]
        last = cfg.walk_length - 1
        if done:
            log.info("walk: resuming after step %d of %d (%s walkers still walking)", len(done),
                     last, f"{done[-1]['live']:,}")
        started = self.stats.nodes if starts is None else starts.nodes
        live = done[-1]["live"] if done else started * cfg.num_walks
        progress = StepProgress(last, first=len(done))
        for step in range(len(done) + 1, last + 1):
            describe(spark, f"spark-n2v walk: step {step} of {last}")
            walkers = self.start(spark) if step == 1 else self.walking(spark, paths[-1])
            # counts the walkers still walking (a retried task counts twice: only for the log)
            counter = spark.sparkContext.accumulator(0)
            task = self.task(cfg, law, step - 1, last, starts)
            name = f"step-{step:05d}"
            self.step(walkers, task, counter).write.mode("overwrite").parquet(points.path(name))
            moving, live = live, counter.value
            points.mark(name, live=live)
            paths.append(points.path(name))
            progress.step(step, moving, live)
        return paths

    def start(self, spark: SparkSession) -> DataFrame:
        """One empty packet per shard: the shard's task starts its walkers itself (_walkers)."""
        return spark.range(self.store.shards).select(
            F.col("id").cast("int").alias(C.SHARD), F.lit(NONE).alias(C.BLOCK),
            F.lit(0).alias(C.STEP), F.lit(bytearray()).alias(C.PACKET))

    def walking(self, spark: SparkSession, step_file: str) -> DataFrame:
        """The walkers packets of a step file."""
        return spark.read.schema(PACKETS).parquet(step_file).where(F.col(C.SHARD) != NONE)

    def blocks(self, cfg: WalkConfig) -> tuple[int, int]:
        """(assembly tasks, walk ids per task): each lays out a block of consecutive walk ids,
        at most about ASSEMBLE_STEPS visits."""
        walks = self.stats.nodes * cfg.num_walks
        tasks = max(self.store.shards, -(-walks * cfg.walk_length // ASSEMBLE_STEPS))
        return tasks, -(-walks // tasks)

    def task(self, cfg: WalkConfig, law: kernels.StepLaw | None, index: int, last: int,
             starts: Starts | None) -> _Step:
        """What the tasks of the step from index `index` (or, law None, of the last walkers'
        decoding) are told."""
        return _Step(self.store, law, index, last, cfg.num_walks, self.blocks(cfg)[1],
                     self.packing, starts)

    def to_shards(self, packets: DataFrame) -> DataFrame:
        """Packets into their shards' partitions: shard k's in partition k (partition_keys)."""
        return packets.repartition(self.store.shards, store.on_shards(self.keys, F.col(C.SHARD)))

    def step(self, packets: DataFrame, task: _Step, counter: Accumulator) -> DataFrame:
        """The packets of walkers at index task.index of their walks -> the step file's packets,
        one step on. `counter` counts the walkers still walking after it."""
        moved = self.to_shards(packets).mapInArrow(
            functools.partial(_propose, task, counter), PACKETS)
        if task.law.needs_edge_test:
            moved = self.to_shards(moved).mapInArrow(
                functools.partial(_resolve, task, counter), PACKETS)
        return moved

    # --- assembly --------------------------------------------------------------------------------

    def assemble(self, spark: SparkSession, steps: list[str], cfg: WalkConfig,
                 starts: Starts | None) -> DataFrame:
        """The walks table from the step files' visits, and the last step's walkers decoded in
        their shards: one shuffle gives each task a block of consecutive walk ids, which it lays
        out by position (no sort)."""
        tasks, block = self.blocks(cfg)
        final = self.walking(spark, steps[-1]) if steps else self.start(spark)
        task = self.task(cfg, None, len(steps), len(steps), starts)
        visits = self.to_shards(final).mapInArrow(functools.partial(_decode_last, task), PACKETS)
        if steps:
            visits = visits.unionByName(
                spark.read.schema(PACKETS).parquet(*steps).where(F.col(C.BLOCK) != NONE))
        keys = store.partition_keys(spark, tasks)
        return (visits.repartition(tasks, store.on_shards(keys, F.col(C.BLOCK)))
                .mapInArrow(functools.partial(_assemble, block, cfg.walk_length),
                            f"{C.WALK_ID} long, {C.WALK} array<{self.store.id_type}>"))


@dataclass(frozen=True)
class _Step:
    """What a step's tasks are told."""

    graph: store.GraphStore
    law: kernels.StepLaw | None  # None: no step, the last walkers' decoding
    index: int      # the walkers stand at this index of their walks
    last: int       # the index of a walk's last node
    num_walks: int  # walks per node: step 0 starts them
    block: int      # walk ids per assembly task (ShardedGraph.blocks)
    packing: Packing
    starts: Starts | None  # the nodes that start walks (None: every node)

    @property
    def shards(self) -> int:
        return self.graph.shards


# --- packets -------------------------------------------------------------------------------------

def _send(task: _Step, rows: pa.Table | pa.RecordBatch, dest: np.ndarray, step: int, to: str
          ) -> Iterator[pa.RecordBatch]:
    """Row i of rows in a packet for dest[i], a shard (to = C.SHARD) or a block (C.BLOCK)."""
    limit = task.packing.packet_rows
    for value, at in kernels.groups(np.asarray(dest)):
        part = rows.take(pa.array(at))
        shard, block = (value, NONE) if to == C.SHARD else (NONE, value)
        for lo in range(0, len(at), limit):
            yield pa.RecordBatch.from_arrays(
                [pa.array([shard], pa.int32()), pa.array([block], pa.int32()),
                 pa.array([step], pa.int32()), _binary(_serialize(part.slice(lo, limit)))],
                names=[C.SHARD, C.BLOCK, C.STEP, C.PACKET])


def _serialize(rows: pa.Table | pa.RecordBatch) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write(rows)
    return sink.getvalue()


def _binary(value: pa.Buffer) -> pa.Array:
    """A one-value binary array over the buffer, without a copy."""
    offsets = pa.py_buffer(np.array([0, value.size], dtype=np.int32))
    return pa.Array.from_buffers(pa.binary(), 1, [None, offsets, value])


def _packets(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[int, int, pa.Buffer]]:
    """(shard, step, packet) of each row."""
    for batch in batches:
        shards, steps = batch.column(C.SHARD).to_pylist(), batch.column(C.STEP).to_pylist()
        packets = batch.column(C.PACKET)
        for i in range(batch.num_rows):
            yield shards[i], steps[i], packets[i].as_buffer()


def _read(packet: pa.Buffer) -> pa.Table:
    return pa.ipc.open_stream(packet).read_all()


def _chunks(tables: Iterable[pa.Table], limit: int) -> Iterator[pa.RecordBatch]:
    """The tables' rows in batches of about `limit` rows (one kernel call each)."""
    held, rows = [], 0
    for table in tables:
        held.append(table)
        rows += table.num_rows
        if rows >= limit:
            yield _one_batch(held)
            held, rows = [], 0
    if rows:
        yield _one_batch(held)


def _one_batch(tables: list[pa.Table]) -> pa.RecordBatch:
    return pa.concat_tables(tables).combine_chunks().to_batches()[0]


def _node_type(graph: store.GraphStore) -> pa.DataType:
    """Node indices in packets: 4 bytes while they fit (the kernels widen them to int64)."""
    return pa.int32() if graph.nodes < 2**31 else pa.int64()


def _walkers(task: _Step, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Walkers (walk_id, prev, cur) from packets, in batches for the kernels. An empty packet
    (`start`) stands for its shard's starting walkers: num_walks per node, walk_id = repetition x
    V + node, so ids never depend on the layout."""
    def tables() -> Iterator[pa.Table]:
        for shard, _, packet in _packets(batches):
            if packet.size:
                yield _read(packet).select([C.WALK_ID, C.PREV, C.CUR])
            else:
                yield from _starts(task, shard)
    return _chunks(tables(), task.packing.chunk_rows)


def _starts(task: _Step, shard: int) -> Iterator[pa.Table]:
    graph, limit = task.graph, task.packing.chunk_rows
    if task.starts is None:
        nodes = np.arange(shard, graph.nodes, graph.shards, dtype=np.int64)
    else:
        nodes = task.starts.rows(shard) * graph.shards + shard
    node_type = _node_type(graph)
    for repetition in range(task.num_walks):
        for lo in range(0, len(nodes), limit):
            at = nodes[lo:lo + limit]
            yield pa.table({C.WALK_ID: pa.array(repetition * graph.nodes + at),
                            C.PREV: pa.array(np.full(len(at), -1), node_type),
                            C.CUR: pa.array(at, node_type)})


# --- the tasks -----------------------------------------------------------------------------------

def _propose(task: _Step, counter: Accumulator, batches: Iterator[pa.RecordBatch]
             ) -> Iterator[pa.RecordBatch]:
    """mapInArrow body of phase A, in the shard of the walkers' nodes."""
    open_shard = functools.partial(store.shard, task.graph)
    for walkers in _walkers(task, batches):
        proposed = kernels.propose_batch(task.law, task.shards, open_shard, task.index, walkers)
        nxt = proposed.column(C.NEXT).to_numpy()
        if not task.law.needs_edge_test:
            yield from _moved(task, counter, proposed, nxt)
            continue
        # walkers with queries to prev's shard, the others to next's (the walk's end: stay)
        asking = pc.list_value_length(proposed.column(C.QUERY_X)).to_numpy() > 0
        prev = proposed.column(C.PREV).to_numpy().astype(np.int64)
        cur = proposed.column(C.CUR).to_numpy().astype(np.int64)
        dest = np.where(asking, prev, np.where(nxt >= 0, nxt, cur)) % task.shards
        yield from _send(task, proposed, dest, task.index, C.SHARD)


def _resolve(task: _Step, counter: Accumulator, batches: Iterator[pa.RecordBatch]
             ) -> Iterator[pa.RecordBatch]:
    """mapInArrow body of phase B: answers the queries asked of this shard."""
    open_shard = functools.partial(store.shard, task.graph)
    proposals = _chunks((_read(packet) for _, _, packet in _packets(batches)),
                        task.packing.chunk_rows)
    for batch in proposals:
        yield from _moved(task, counter, batch,
                          kernels.resolve_batch(task.law, task.shards, open_shard, batch))


def _moved(task: _Step, counter: Accumulator, proposals: pa.RecordBatch, nxt: np.ndarray
           ) -> Iterator[pa.RecordBatch]:
    """The step file's packets: the walkers still walking, one step on (walk_id, prev = cur,
    cur = next), for the shard of their new node; and the visits (walk_id, visited), for their
    blocks."""
    moving = np.flatnonzero(nxt >= 0)
    if task.index + 1 < task.last:
        counter.add(len(moving))
    node_type = _node_type(task.graph)
    walkers = pa.RecordBatch.from_arrays(
        [proposals.column(C.WALK_ID), proposals.column(C.CUR).cast(node_type),
         pa.array(nxt, node_type)], names=[C.WALK_ID, C.PREV, C.CUR]).take(pa.array(moving))
    yield from _send(task, walkers, nxt[moving] % task.shards, task.index + 1, C.SHARD)
    yield from _visits(task, proposals.column(C.WALK_ID), proposals.column(C.VISITED))


def _visits(task: _Step, walk_id: pa.Array, visited: pa.Array) -> Iterator[pa.RecordBatch]:
    """Visits packets: walkers at index task.index were at the nodes `visited`."""
    rows = pa.RecordBatch.from_arrays([walk_id, visited], names=[C.WALK_ID, C.VISITED])
    yield from _send(task, rows, walk_id.to_numpy() // task.block, task.index, C.BLOCK)


def _decode_last(task: _Step, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: walkers at the last index of their walks -> their visits, decoded in
    their shard."""
    graph = task.graph
    open_shard = functools.partial(store.shard, graph)
    for walkers in _walkers(task, batches):
        visited = kernels.decode(walkers.column(C.CUR).to_numpy().astype(np.int64),
                                 graph.shards, open_shard)
        yield from _visits(task, walkers.column(C.WALK_ID), visited)


def _assemble(block: int, walk_length: int, batches: Iterator[pa.RecordBatch]
              ) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: visits packets of whole walks -> (walk_id, walk), ids in step order.
    Walk ids come in blocks of `block` (one per task, or more after a retry elsewhere): each visit
    goes to its slot (walk, step) of its block, a counting sort, as every walk's steps are
    0..length-1."""
    tables, steps = [], []
    for _, step, packet in _packets(batches):
        tables.append(_read(packet))
        steps.append(np.full(tables[-1].num_rows, step, dtype=np.int64))
    if not tables:
        return
    table = pa.concat_tables(tables)
    walk_id = table.column(C.WALK_ID).to_numpy()
    step = np.concatenate(steps)
    visited = table.column(C.VISITED)
    for first in np.unique(walk_id // block) * block:
        rows = np.flatnonzero((walk_id >= first) & (walk_id < first + block))
        local = walk_id[rows] - first
        slot = np.full(block * walk_length, -1, dtype=np.int64)
        slot[local * walk_length + step[rows]] = rows
        order = slot[slot >= 0]
        del slot
        lengths = np.bincount(local, minlength=block)
        ids = visited.take(pa.array(order)).combine_chunks()
        present = np.flatnonzero(lengths)
        ends = np.cumsum(lengths[present])
        starts = ends - lengths[present]
        for a in range(0, len(present), _OUT_WALKS):
            lo, hi = int(starts[a]), int(ends[min(a + _OUT_WALKS, len(present)) - 1])
            offsets = pa.array(np.append(starts[a:a + _OUT_WALKS] - lo, hi - lo).astype(np.int32))
            yield pa.RecordBatch.from_arrays(
                [pa.array(present[a:a + _OUT_WALKS] + first),
                 pa.ListArray.from_arrays(offsets, ids.slice(lo, hi - lo))],
                names=[C.WALK_ID, C.WALK])
