"""Negative-sampling skip-gram trained inside Spark, partitioned: nothing model-sized on the driver.

1. Tokens by node, vocabulary (the walks' one pass through Spark): every walk position becomes
   (walk_id, pos, id, window), written by Python tasks to Parquet files split by a hash of the
   node id, and each node's tokens are counted; nodes are ranked by count (most frequent first,
   ties by id: a node's rank gives its initial vector, the same whatever P) and placed in P
   partitions of about equal tokens (layout.py: by community, or round-robin by rank), each node
   a row of its partition. The reduced window is a hash of (seed, walk_id, pos): the same pairs
   whatever P.
2. Tokens by partition: Python tasks read each hash bucket's files with the bucket's vocabulary
   rows and rewrite them as (walk_id, pos, local, window) split by the node's partition.
3. Init: tables, and each partition's tokens of each chunk as one array sorted by (walk, pos).
4. Rounds: each epoch's walks are dealt into C chunks (a hash of the walk id); chunk c, round r
   trains bucket (i, (i + r) mod P) in task i, for every i at once: task i reads syn0[i] and
   syn1[j] and chunk c's tokens of partitions i and j, runs kernel.train_bucket, and writes both
   tables back. Chunks matter for quality: with one chunk, all of an epoch's pairs of bucket
   (i, i + r) train in round r at that round's learning rate (measured on a 20k-node planted
   graph: macro-F1 0.900 at P = 1, 0.889 at P = 2, 0.869 at P = 4); with 8 chunks every bucket
   sees the whole decay (0.900, 0.900, 0.899). Tables move between rounds through files in the
   work folder (local disk, HDFS or an object store), never through the driver; each round writes
   new files, so a retried task starts from the same inputs and the same seed and P give the same
   embeddings.
5. Output: each task turns its partition of syn0 into (id, embedding) rows.

Warm start (`spark-n2v update`): keep_model copies a finished training's tables and vocabulary
into the output (DIR/_update/model); train_sgns(warm=WarmStart(model, counts)) ranks the
vocabulary by the given counts (the whole corpus, of which the walks trained are a part), and
the init round starts each node the kept model has from its rows of both tables (work/warm says
where each is), every other node as above.

Resume: `_train.json` in the work folder records the token split (with the plan) and the rounds
finished. A rerun of a killed run (same command and inputs: record.OutputPath) starts after the
last finished round, from that round's table files, and ends with the same embeddings.
"""

from __future__ import annotations

import functools
import logging
import math
import resource
import time
from dataclasses import asdict, dataclass
from typing import Iterator, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_n2v import columns as C
from spark_n2v.config import TrainConfig
from spark_n2v.errors import UserError
from spark_n2v.frames import (RANK_IN_ONE_TASK, cached_count, count_ids, partition_table,
                              rank_rows)
from spark_n2v.io.files import HadoopFiles, arrow_fs, read_parquet
from spark_n2v.io.taskfiles import FileRef, Inputs, Outputs, Ref, TableRef, TaskFiles
from spark_n2v.progress import LIVE, describe, duration
from spark_n2v.record import ResumePoints
from spark_n2v.streams import TRAIN_TOKEN_BUCKET, column_hash
from spark_n2v.train import layout
from spark_n2v.train import sgns_kernel as kernel
from spark_n2v.train.trainers import Trained, Trainer

log = logging.getLogger(__name__)

TASK_TABLE_BYTES = 1 << 30  # automatic P keeps a task's two table partitions near 1 GiB
# Automatic epochs: enough passes for this many training tokens per node (5 passes of 2 walks of
# 40), at most gensim's default of 5 passes (see auto_epochs).
AUTO_EPOCH_TOKENS = 400
MAX_AUTO_EPOCHS = 5
# Shared negatives per walk per negative (50 for 5). Measured at P = 1 on the trainer bench's
# skewed 45-class graph (its cached walks, one after another, 2026-12-02): macro-F1 0.3812 with 5,
# 0.3892 with 10, 0.3890 with 20 (gensim 0.3883); train 97 s with 5, 124 s with 10 (112 s once
# workers split the apply by row), 131 s with 20.
SHARED_PER_NEGATIVE = 10
OUTPUT_BATCH_ROWS = 1 << 16  # rows per slice: of initial vectors, of Arrow batches to the JVM
SMALL_PARTITION_NODES = 16   # fewer nodes per partition than this: warn (bench/train.py, demo graph)
TOKEN_ROW_GROUP = 1 << 18   # token rows per Parquet row group a task writes
_RESUME_STATE = "_train.json"  # the token split and the rounds finished: where a rerun resumes


@dataclass(frozen=True)
class Plan:
    """Everything a training task needs, small enough to ship with every task."""

    work: str                 # work folder (local path or URI)
    partitions: int
    dim: int
    negatives: int
    learning_rate: float
    epochs: int
    chunks: int
    seed: int
    sizes: tuple[int, ...]    # nodes per partition
    shares: tuple[float, ...]  # each partition's share of the unigram^0.75 mass
    warm: str | None = None   # a kept model (keep_model) the tables start from, where it has the node
    layout: str = "frequency"  # where nodes' rows live (TrainConfig.layout; frequency at P = 1)

    @property
    def rounds(self) -> int:
        return self.epochs * self.chunks * self.partitions

    def chunk(self, k: int) -> int:
        return (k // self.partitions) % self.chunks

    def shared(self, j: int) -> int:
        """Negatives drawn per walk in a bucket whose outputs are partition j."""
        return max(self.negatives, math.ceil(SHARED_PER_NEGATIVE * self.negatives * self.shares[j]))

    def lr(self, k: int) -> float:
        """Learning rate at the start of round k: linear decay to 1e-4 of the start, as word2vec."""
        return self.learning_rate * max(kernel.MIN_LR_FRACTION, 1.0 - k / self.rounds)

    def as_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, fields: dict) -> Plan:
        return cls(**{**fields, "sizes": tuple(fields["sizes"]),
                      "shares": tuple(fields["shares"])})


def auto_partitions(nodes: int, dim: int) -> int:
    """The fewest partitions that keep a task's two tables near 1 GiB. Not one per core: a token
    has pairs in every partition its window reaches, so the rows a round trains grow with P, and
    parallel rounds pay only where cores are many (bench/results/train-2026-12-03-0807.md, 2
    cores, planted 20k graph, 16M tokens: train 59.4 s at P = 1 with 2 workers a task, 80.6 s
    at P = 4, 133.6 s at P = 16 with 2 chunks)."""
    return max(1, math.ceil(2 * nodes * dim * 4 / TASK_TABLE_BYTES))


def auto_epochs(tokens: int, nodes: int) -> int:
    """Passes over the walks when train.epochs is unset: enough that the corpus trains each node
    on about AUTO_EPOCH_TOKENS tokens, between 1 and MAX_AUTO_EPOCHS. Skip-gram with negative
    sampling first grows every vector along one shared direction (the inputs one way, the
    outputs the other: positive pairs score below zero), and only then tells communities
    apart; one pass over a thin corpus (2 walks of 40 per node, 80 tokens a node) ends inside
    that first phase, with every embedding nearly parallel and a classifier below chance, as
    gensim's one pass does too. node2vec's 10 walks of 80 need one pass."""
    per_node = tokens / max(nodes, 1)
    return max(1, min(MAX_AUTO_EPOCHS, math.ceil(AUTO_EPOCH_TOKENS / max(per_node, 1))))


def warm_chunks(cfg: TrainConfig, nodes: int, share: float) -> int:
    """Chunks of a warm start that trains `share` of the corpus's walks: at P = 1 chunks only cut
    an epoch into rounds, each reloading the tables (they matter for quality at P > 1 only: see
    the module's docstring), so a small share trains in as many rounds as the same share of a
    run's tokens takes (one for an update's 10%: 7 rounds' reloads fewer)."""
    if (cfg.partitions or auto_partitions(nodes, cfg.dim)) > 1:
        return cfg.chunks
    return max(1, min(cfg.chunks, math.ceil(cfg.chunks * share)))


def task_workers(cores: int, partitions: int) -> int:
    """Processes per training task by default: the cores each of a round's P tasks has, but no
    more than a snapshot has batches."""
    return max(1, min(kernel.SNAPSHOT_BATCHES, cores // partitions))


# --- vocabulary and tokens (Spark, then Python tasks) --------------------------------------------------

def token_id_types(id_field: T.DataType) -> tuple[T.DataType, pa.DataType]:
    """Ids travel through the tasks as longs (any integer type) or strings (anything else)."""
    if isinstance(id_field, T.IntegralType):
        return T.LongType(), pa.int64()
    return T.StringType(), pa.string()


def _bucket_of(node: Column, buckets: int) -> Column:
    """The bucket of token files a node id's tokens go to in the first pass (ids of one type)."""
    return F.pmod(column_hash(TRAIN_TOKEN_BUCKET, node), F.lit(buckets)).cast("int")


def _token_table(seed: int, window: int, chunks: int, id_type: pa.DataType,
                 batch: pa.RecordBatch) -> pa.Table:
    """(walk_id, walk[, bucket]) -> one row per position: (walk_id, chunk, pos, id, win[,
    bucket])."""
    walks = batch.column(C.WALK)
    lengths = pc.list_value_length(walks).fill_null(0).to_numpy().astype(np.int64)
    walks_id = batch.column(C.WALK_ID).to_numpy()
    walk_id = np.repeat(walks_id, lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = np.arange(len(walk_id), dtype=np.int64) - starts
    columns = [
        pa.array(walk_id), pa.array(np.repeat(kernel.chunk_of(seed, walks_id, chunks), lengths)),
        pa.array(pos.astype(np.int32)), pc.list_flatten(walks).cast(id_type),
        pa.array(kernel.reduced_windows(seed, walk_id, pos, window).astype(np.int16))]
    names = [C.WALK_ID, C.CHUNK, C.POS, C.ID, C.WIN]
    if C.BUCKET in batch.schema.names:
        columns.append(pc.list_flatten(batch.column(C.BUCKET)))
        names.append(C.BUCKET)
    return pa.table(columns, names=names)


def _token_rows(seed: int, window: int, chunks: int, id_type: pa.DataType,
                batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: walks (walk_id, walk) -> their tokens (walk_id, chunk, pos, id, win)."""
    for batch in batches:
        yield from _token_table(seed, window, chunks, id_type, batch).to_batches()


_BUCKET_FILE_COLUMNS = [C.WALK_ID, C.CHUNK, C.POS, C.ID, C.WIN]
_TOKEN_FILE_COLUMNS = [C.WALK_ID, C.POS, C.LOCAL, C.WIN]


def _bucket_tokens(folder: str, seed: int, window: int, chunks: int, id_type: pa.DataType,
                   batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """First pass, over the walks: a task's tokens into folder/bucket=b/task-N.parquet (with their
    node ids), and the task's token count of each id."""
    from pyspark import TaskContext
    name = f"task-{TaskContext.get().partitionId():05d}"

    def written(files: _GroupedFiles) -> Iterator[pa.Table]:
        for batch in batches:
            table = _token_table(seed, window, chunks, id_type, batch)
            files.add(table)
            yield table

    with _GroupedFiles(folder, name, [C.BUCKET], _BUCKET_FILE_COLUMNS) as files:
        counts = list(count_ids(written(files)))
    yield from counts


def _split_buckets(by_id: str, folder: str, batches: Iterator[pa.RecordBatch]
                   ) -> Iterator[pa.RecordBatch]:
    """Second pass, over the first pass's files (no Spark shuffle of the tokens): vocabulary rows
    (id, part, local, bucket) of some buckets -> each bucket's tokens of vocabulary nodes with
    their node's row, into folder/part=i/chunk=c/bucket-B.parquet. Yields (part, chunk, rows)."""
    vocab = partition_table(batches)
    if vocab is None:
        return
    of = vocab.column(C.BUCKET).to_numpy()
    for b in np.unique(of):
        mine = vocab.filter(pa.array(of == b))
        tokens = read_parquet(f"{by_id}/{C.BUCKET}={b}", _BUCKET_FILE_COLUMNS)
        if tokens is None:  # no token of this bucket (cannot happen for a vocabulary node)
            continue
        at = pc.index_in(tokens.column(C.ID), value_set=mine.column(C.ID))
        kept = pc.is_valid(at)  # nodes under min_count are not in the vocabulary: dropped
        tokens, at = tokens.filter(kept), at.filter(kept)
        tokens = (tokens.append_column(C.PART, mine.column(C.PART).take(at))
                  .append_column(C.LOCAL, mine.column(C.LOCAL).take(at)))
        with _GroupedFiles(folder, f"bucket-{b:05d}", [C.PART, C.CHUNK],
                           _TOKEN_FILE_COLUMNS) as files:
            files.add(tokens)
        yield pa.RecordBatch.from_pydict(
            {C.PART: [g[0] for g in files.rows], C.CHUNK: [g[1] for g in files.rows],
             "rows": list(files.rows.values())},
            schema=pa.schema([(C.PART, pa.int32()), (C.CHUNK, pa.int32()), ("rows", pa.int64())]))


class _GroupedFiles:
    """Rows streamed into folder/k1=v1[/k2=v2]/NAME.parquet by the values of key columns, in row
    groups of about TOKEN_ROW_GROUP rows (Arrow batches hold 10k rows: a row group per batch
    made the files slow to write and to read every round). The name depends on the task: a
    retried task rewrites the same files with the same rows (staged, renamed when complete)."""

    def __init__(self, folder: str, name: str, keys: list[str], columns: list[str]):
        self.fs, self.root = arrow_fs(folder)
        self.name, self.keys, self.columns = name, keys, columns
        self.writers: dict[tuple[int, ...], tuple[pq.ParquetWriter, str]] = {}
        self.pending: dict[tuple[int, ...], list[pa.Table]] = {}
        self.held: dict[tuple[int, ...], int] = {}  # rows pending per group
        self.rows: dict[tuple[int, ...], int] = {}  # rows written per group

    def add(self, table: pa.Table) -> None:
        key = np.zeros(len(table), np.int64)
        for k in self.keys:  # key values are small non-negative ints (buckets, partitions, chunks)
            key = key * (1 << 31) + table.column(k).to_numpy().astype(np.int64)
        order = np.argsort(key, kind="stable")
        ranked = key[order]
        cuts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1], True])
        values = table.select(self.keys).take(pa.array(order[cuts[:-1]])).to_pylist()
        table = table.select(self.columns).take(pa.array(order))
        for row, a, b in zip(values, cuts[:-1], cuts[1:]):
            group = tuple(int(row[k]) for k in self.keys)
            self.pending.setdefault(group, []).append(table.slice(a, b - a))
            self.held[group] = self.held.get(group, 0) + int(b - a)
            self.rows[group] = self.rows.get(group, 0) + int(b - a)
            if self.held[group] >= TOKEN_ROW_GROUP:
                self._flush(group)

    def _flush(self, group: tuple[int, ...]) -> None:
        table = pa.concat_tables(self.pending.pop(group))
        self.held[group] = 0
        if group not in self.writers:
            folder = "/".join([self.root, *(f"{k}={v}" for k, v in zip(self.keys, group))])
            self.fs.create_dir(folder, recursive=True)
            staged = f"{folder}/{self.name}.parquet.incomplete"
            self.writers[group] = (pq.ParquetWriter(staged, table.schema, filesystem=self.fs),
                                   staged)
        self.writers[group][0].write_table(table, row_group_size=len(table))

    def __enter__(self) -> _GroupedFiles:
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None:
                for group in list(self.pending):
                    self._flush(group)
        finally:
            for writer, _ in self.writers.values():
                writer.close()
        if kind is None:
            for _, staged in self.writers.values():
                self.fs.move(staged, staged.removesuffix(".incomplete"))


# --- tasks -------------------------------------------------------------------------------------------
# Each job's tasks read and write the work folder's files through TaskFiles (io/taskfiles.py):
# directly on local disk, through Spark elsewhere. Datasets: tokens/part=i/chunk=c (the split,
# Parquet), sorted (each partition's tokens of each chunk, sorted), state/k (the tables at the
# start of round k), vocab/part=i and warm/part=i (Parquet, written by Spark).

def _sorted_name(part: int, chunk: int) -> str:
    return f"{part}-{chunk}"


def _table(k: int, name: str, part: int) -> FileRef:
    return FileRef(f"state/{k}", f"{name}-{part}")


def _tokens_of(found: Inputs, part: int, chunk: int) -> kernel.Tokens:
    stacked = found.array(_sorted_name(part, chunk))
    return kernel.Tokens.of_stacked(stacked if stacked is not None
                                    else np.zeros((len(_TOKEN_FILE_COLUMNS), 0), np.int64))


def _negative_table(found: Inputs, size: int) -> np.ndarray:
    table = found.table("vocab", [C.LOCAL, C.COUNT])
    counts = np.zeros(size, np.float64)
    counts[table.column(C.LOCAL).to_numpy()] = table.column(C.COUNT).to_numpy()
    return kernel.negative_table(counts)


def sort_task(plan: Plan, task: int, found: Inputs, out: Outputs) -> Iterator[tuple[int]]:
    """Task (chunk c, partition i) of the init: partition i's tokens of chunk c, from the split's
    Parquet files to one array sorted by (walk, pos), read by every round that trains them (where
    every round read and sorted the Parquet files again, at P = 16 a round's tasks read and sorted
    2 x its chunk's tokens, 32 x the corpus an epoch). Reports (tokens sorted,)."""
    i, chunk = task % plan.partitions, task // plan.partitions
    table = found.table("tokens", _TOKEN_FILE_COLUMNS)
    columns = [table.column(c).to_numpy() if table else np.zeros(0, np.int64)
               for c in _TOKEN_FILE_COLUMNS]
    out.array(_sorted_name(i, chunk), kernel.Tokens.sorted(*columns).stacked())
    yield (len(columns[0]),)


def init_tables_task(plan: Plan, i: int, found: Inputs, out: Outputs) -> Iterator[tuple[int]]:
    """Partition i's tables at the start: syn0[i] from each node's rank (the same start for any
    P) and syn1[i] zeros, or a warm start's rows. Reports (rows,)."""
    syn0 = np.empty((plan.sizes[i], plan.dim), np.float32)
    syn1 = np.zeros((plan.sizes[i], plan.dim), np.float32)
    fresh = np.ones(plan.sizes[i], bool)  # rows a warm start does not set
    if plan.warm:
        fresh[_warm_rows(plan, found, syn0, syn1)] = False
    rows = np.flatnonzero(fresh)
    rank = np.zeros(plan.sizes[i], np.int64)  # each row's node's rank: its initial vector
    vocab = found.table("vocab", [C.LOCAL, C.RANK])
    if vocab is not None:
        rank[vocab.column(C.LOCAL).to_numpy()] = vocab.column(C.RANK).to_numpy()
    # in slices: the hashes take 8 bytes per cell and their temporaries several times that (a
    # 4.25M x 128 partition at once took over 20 GB and was killed)
    for a in range(0, len(rows), OUTPUT_BATCH_ROWS):
        some = rows[a:a + OUTPUT_BATCH_ROWS]
        syn0[some] = kernel.initial_vectors(plan.seed, rank[some], plan.dim)
    out.array(f"syn0-{i}", syn0)
    out.array(f"syn1-{i}", syn1)
    yield (plan.sizes[i],)


def _warm_rows(plan: Plan, found: Inputs, syn0: np.ndarray, syn1: np.ndarray) -> np.ndarray:
    """Partition i's rows that start from the kept model: each the mean of its rows there
    (_warm_map says where they are: one, its own, for a node the model has). Returns those rows;
    the others take the trainer's start."""
    where = found.table("warm", [C.LOCAL, _KEPT_PART, _KEPT_LOCAL])
    if where is None or where.num_rows == 0:
        return np.zeros(0, np.int64)
    local, part, kept = (where.column(c).to_numpy() for c in (C.LOCAL, _KEPT_PART, _KEPT_LOCAL))
    # in one order whatever the files' (a mean's float sum depends on it)
    order = np.lexsort((kept, part, local))
    local, part, kept = local[order], part[order], kept[order]
    rows, many = np.unique(local, return_counts=True)
    shared = np.repeat(many > 1, many)  # rows of a node started at the mean of several
    averaged = rows[many > 1]
    slot = np.searchsorted(averaged, local[shared])  # (local is sorted)
    for name, table in (("syn0", syn0), ("syn1", syn1)):
        sums = np.zeros((len(averaged), plan.dim), np.float64)
        for j in np.unique(part):
            mine = part == j
            kept_table = found.array(f"kept-{name}-{j}")
            own = mine & ~shared
            table[local[own]] = kept_table[kept[own]]
            np.add.at(sums, slot[mine[shared]], kept_table[kept[mine & shared]])
        table[averaged] = (sums / many[many > 1, None]).astype(np.float32)
    return rows


class TaskReport(NamedTuple):
    loss: float        # over a sample of the batches
    pairs: int         # pairs in that sample
    bucket_pairs: int  # all the bucket's pairs
    row_visits: int    # gathers and scatters of one table row (kernel.Trained)
    io_s: float        # reading tables and tokens, writing tables
    train_s: float
    peak_bytes: int    # the Python worker's peak resident memory so far


def _round_inputs(plan: Plan, k: int) -> list[list[Ref]]:
    """What each task of round k reads: its tables, both partitions' tokens of the round's chunk,
    the output partition's vocabulary (its negatives' law)."""
    P, chunk = plan.partitions, plan.chunk(k)
    inputs = []
    for i in range(P):
        j = (i + k) % P
        sorted_ = [FileRef("sorted", _sorted_name(p, chunk)) for p in sorted({i, j})]
        inputs.append([_table(k, "syn0", i), _table(k, "syn1", j), *sorted_,
                       TableRef(f"vocab/{C.PART}={j}", "vocab")])
    return inputs


def train_task(plan: Plan, k: int, workers: int, i: int, found: Inputs, out: Outputs
               ) -> Iterator[TaskReport]:
    """Round k (0-based) trains bucket (i, j): syn0[i] against syn1[j] with `workers` processes;
    writes both for round k+1."""
    P = plan.partitions
    j = (i + k) % P
    started = time.perf_counter()
    syn0 = found.array(f"syn0-{i}")
    syn1 = found.array(f"syn1-{j}")
    rows = _tokens_of(found, i, plan.chunk(k))
    cols = rows if j == i else _tokens_of(found, j, plan.chunk(k))
    neg_cum = _negative_table(found, plan.sizes[j]) if plan.sizes[j] else None
    law = kernel.BucketLaw(lr_start=plan.lr(k), lr_end=plan.lr(k + 1), negatives=plan.negatives,
                             shared=plan.shared(j), seed=plan.seed,
                             key=k * P * P + i * P + j)
    loaded = time.perf_counter()
    done = kernel.Trained(0.0, 0, 0, 0)
    if len(rows) and neg_cum is not None:
        done = kernel.train_bucket(syn0, syn1, rows, cols, neg_cum, law, workers)
    trained = time.perf_counter()
    out.array(f"syn0-{i}", syn0)
    out.array(f"syn1-{j}", syn1)
    yield TaskReport(done.loss, done.sampled_pairs, done.pairs, done.row_visits,
                     loaded - started + time.perf_counter() - trained,
                     trained - loaded, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def _embedding_rows(plan: Plan, id_type: pa.DataType, i: int, found: Inputs
                    ) -> Iterator[pa.RecordBatch]:
    vocab = found.table("vocab", [C.ID, C.LOCAL])
    if vocab is None:
        return
    syn0 = found.array(f"syn0-{i}")
    local = vocab.column(C.LOCAL).to_numpy()
    ids = vocab.column(C.ID).combine_chunks().cast(id_type)
    # slices keep each Arrow buffer far below the JVM's 2 GiB limit on large partitions
    for a in range(0, len(local), OUTPUT_BATCH_ROWS):
        rows = syn0[local[a:a + OUTPUT_BATCH_ROWS]]
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(rows.ravel()), plan.dim)
        yield pa.RecordBatch.from_arrays(
            [ids.slice(a, len(rows)), vectors.cast(pa.list_(pa.float32()))],
            names=[C.ID, C.EMBEDDING])


# --- the driver's side -------------------------------------------------------------------------------

class SgnsTrainer(Trainer):
    name = "sgns"

    def train(self, spark: SparkSession, walks: DataFrame, cfg: TrainConfig, work_dir: str
              ) -> Trained:
        return train_sgns(spark, walks, cfg, work_dir)

    def train_from(self, spark: SparkSession, walks: DataFrame, cfg: TrainConfig, work_dir: str,
                   model: str, counts: DataFrame, neighbours: DataFrame | None = None
                   ) -> Trained:
        return train_sgns(spark, walks, cfg, work_dir, WarmStart(model, counts, neighbours))

    def keep_model(self, spark: SparkSession, work_dir: str, folder: str) -> bool:
        keep_model(spark, work_dir, folder)
        return True


_MODEL = "_model.json"  # a kept model's plan, written last: the model is complete
_KEPT_PART, _KEPT_LOCAL = "_kept_part", "_kept_local"  # a node's place in the kept model


@dataclass(frozen=True)
class WarmStart:
    """Training that starts from a kept model (keep_model's folder) instead of the trainer's
    start: both tables' rows of the nodes the model has (others start as usual), and the
    vocabulary counted in `counts` (id, count: the whole corpus the embeddings stand for, of
    which the walks trained are a part) rather than in the walks trained. A node the model
    lacks starts at the mean of both tables' rows of its `neighbours` (id, neighbour) that the
    model has (a new node is placed among them before any training: on the 200k-node benchmark
    graph with 1% new nodes, untrained, their macro-F1 was 0.92 against a full run's 0.87), or,
    with none, as a run starts it."""

    model: str
    counts: DataFrame
    neighbours: DataFrame | None = None


def kept_plan(spark: SparkSession, folder: str) -> Plan | None:
    """The plan of the model kept at folder, or None if there is none (or an unfinished one)."""
    fields = HadoopFiles(spark, folder).read_json(f"{folder}/{_MODEL}")
    return Plan.from_json(fields) if fields else None


def _warm_map(spark: SparkSession, vocab: DataFrame, warm: WarmStart, work: str) -> None:
    """Where each partition's rows start in the kept model: work/warm (local, _kept_part,
    _kept_local; by part), a row for each node the model has (its own place) and for each
    neighbour (in the model) of a node it lacks; _warm_rows averages a node's rows."""
    kept = spark.read.parquet(f"{warm.model}/vocab").select(
        C.ID, F.col(C.PART).alias(_KEPT_PART), F.col(C.LOCAL).alias(_KEPT_LOCAL))
    rows = vocab.select(C.ID, C.PART, C.LOCAL)
    places = rows.join(kept, C.ID)
    if warm.neighbours is not None:
        id_type = vocab.schema[C.ID].dataType
        lacking = rows.join(kept, C.ID, "left_anti")
        by_neighbour = (warm.neighbours
                        .select(F.col(C.ID).cast(id_type).alias(C.ID),
                                F.col(C.NEIGHBOUR).cast(id_type).alias(C.NEIGHBOUR))
                        .join(lacking, C.ID)
                        .join(kept.withColumnRenamed(C.ID, C.NEIGHBOUR), C.NEIGHBOUR))
        places = places.unionByName(by_neighbour.drop(C.NEIGHBOUR))
    (places.select(C.PART, C.LOCAL, _KEPT_PART, _KEPT_LOCAL)
     .write.mode("overwrite").partitionBy(C.PART).parquet(f"{work}/warm"))


def keep_model(spark: SparkSession, work: str, folder: str) -> None:
    """The finished training in `work` -> folder: syn0-i and syn1-i (the last round's tables of
    partition i, TaskFiles of the dataset ""), vocab/ (id, count, local; by part) and
    _model.json (the plan, last). Copied by P tasks, not moved: the work folder stays whole until
    the output is committed, so a run killed in between still resumes."""
    plan = Plan.from_json(ResumePoints(spark, work, _RESUME_STATE).find("tokens")["plan"])
    files = HadoopFiles(spark, folder)
    files.delete(folder)
    inputs = [[FileRef(f"state/{plan.rounds}", f"{name}-{i}", root=work)
               for name in ("syn0", "syn1")] for i in range(plan.partitions)]
    TaskFiles(folder).run(spark, inputs, _copy_tables, "", ["tables"])
    spark.read.parquet(f"{work}/vocab").write.partitionBy(C.PART).parquet(f"{folder}/vocab")
    files.write_json(f"{folder}/{_MODEL}", plan.as_json())


def _copy_tables(i: int, found: Inputs, out: Outputs) -> Iterator[tuple[int]]:
    for name in ("syn0", "syn1"):
        out.array(f"{name}-{i}", found.array(f"{name}-{i}"))
    yield (2,)


def _init(spark: SparkSession, plan: Plan, files: TaskFiles) -> None:
    """The init round: each partition's tokens of each chunk sorted (P x chunks tasks), then the
    tables (P tasks)."""
    P = plan.partitions
    tokens = [[TableRef(f"tokens/{C.PART}={t % P}/{C.CHUNK}={t // P}", "tokens")]
              for t in range(P * plan.chunks)]
    files.run(spark, tokens, functools.partial(sort_task, plan), "sorted", ["tokens"])
    files.delete(spark, "tokens")  # sorted into `sorted`
    warm: list[list[Ref]] = [[] for _ in range(P)]
    if plan.warm:
        # the kept model's partitions each partition starts from (at most P x P rows)
        for row in (spark.read.parquet(f"{plan.work}/warm").select(C.PART, _KEPT_PART)
                    .distinct().collect()):
            warm[row[C.PART]] += [FileRef("", f"{name}-{row[_KEPT_PART]}", root=plan.warm,
                                          alias=f"kept-{name}-{row[_KEPT_PART]}")
                                  for name in ("syn0", "syn1")]
        for i in range(P):
            warm[i].append(TableRef(f"warm/{C.PART}={i}", "warm"))
    for i in range(P):
        warm[i].append(TableRef(f"vocab/{C.PART}={i}", "vocab"))
    files.run(spark, warm, functools.partial(init_tables_task, plan), "state/0", ["rows"])


def train_sgns(spark: SparkSession, walks: DataFrame, cfg: TrainConfig, work: str,
               warm: WarmStart | None = None) -> Trained:
    """walks (walk_id, walk) -> embeddings (id, embedding array<float>), trained in P-task rounds,
    from a kept model if `warm`; resumes after the last round a killed run finished in `work`.
    The epochs: cfg.epochs, or auto_epochs of the vocabulary's counts (a warm start's: the whole
    corpus, so an update trains as many passes as the run it updates)."""
    if C.WALK_ID not in walks.columns:
        raise UserError("{train.trainer=sgns} needs the walks table's walk_id column (long), "
                        "which spark-n2v walk writes; add one, or use {train.trainer=mllib}")
    id_field = walks.schema[C.WALK].dataType.elementType
    spark_id, arrow_id = token_id_types(id_field)
    points = ResumePoints(spark, work, _RESUME_STATE)
    split = points.find("tokens")
    if split:
        plan, tokens = Plan.from_json(split["plan"]), split["tokens"]
    else:
        HadoopFiles(spark, work).delete(work)  # a killed run's unfinished split: start afresh
        plan, tokens = _split_tokens(spark, walks, cfg, work, warm)
        points.mark("tokens", plan=plan.as_json(), tokens=tokens)
    P = plan.partitions
    files = TaskFiles(work)
    workers = cfg.workers or task_workers(spark.sparkContext.defaultParallelism, P)
    done = points.find("rounds") or {}
    first = done.get("done")
    # every bucket's pairs, and those of the diagonal buckets (i, i): what the layout keeps
    # inside a partition (cumulative, in the resume points: a resumed run reports them all)
    pairs, diagonal = done.get("pairs", 0), done.get("diagonal", 0)
    visits = done.get("row_visits", 0)  # the kernel's gathers and scatters of a table row
    if first is None:
        describe(spark, "spark-n2v train: initialise tables")
        _init(spark, plan, files)
        points.mark("rounds", done=0)
        first = 0
    else:
        log.info("train: resuming after round %d of %d", first, plan.rounds)
        if first:  # a kill between marking a round and deleting its inputs leaves them
            files.delete(spark, f"state/{first - 1}")
    started, peak = time.perf_counter(), 0
    for k in range(first, plan.rounds):
        describe(spark, f"spark-n2v train: round {k + 1} of {plan.rounds}")
        body = functools.partial(train_task, plan, k, workers)
        results = [TaskReport(**row) for row in files.run(
            spark, _round_inputs(plan, k), body, f"state/{k + 1}", list(TaskReport._fields))]
        pairs += sum(r.bucket_pairs for r in results)
        visits += sum(r.row_visits for r in results)
        if k % P == 0:
            diagonal += sum(r.bucket_pairs for r in results)
        # round k + 1's tables are whole: resume from them
        points.mark("rounds", done=k + 1, pairs=pairs, diagonal=diagonal, row_visits=visits)
        files.delete(spark, f"state/{k}")
        peak = max(peak, max(r.peak_bytes for r in results))
        loss = sum(r.loss for r in results) / max(sum(r.pairs for r in results), 1)
        done = (k + 1 - first) / (plan.rounds - first)  # of this run's rounds
        elapsed = time.perf_counter() - started
        log.info("train round %d/%d (epoch %d, chunk %d, %d worker%s a task): loss %.4f per "
                 "sampled pair, %.0fk tokens/s, ETA %s (slowest task: %.1f s input/output, %.1f s training; "
                 "peak task memory %.2f GB)",
                 k + 1, plan.rounds, k // (P * plan.chunks) + 1, plan.chunk(k) + 1, workers,
                 "" if workers == 1 else "s", loss,
                 tokens * plan.epochs / plan.rounds * (k + 1 - first) / elapsed / 1e3,
                 duration(elapsed / done - elapsed), max(r.io_s for r in results),
                 max(r.train_s for r in results), peak / 1e9, extra=LIVE)
    if pairs:
        log.info("train: %.1f%% of the pairs in the diagonal buckets (%s layout, P = %d); "
                 "%.2f row visits per pair", 100 * diagonal / pairs, plan.layout, P,
                 visits / pairs)
    describe(spark, "spark-n2v train: write embeddings")
    schema = T.StructType([T.StructField(C.ID, spark_id),
                           T.StructField(C.EMBEDDING, T.ArrayType(T.FloatType()))])
    inputs = [[_table(plan.rounds, "syn0", i), TableRef(f"vocab/{C.PART}={i}", "vocab")]
              for i in range(P)]
    embeddings = files.frame(spark, inputs, functools.partial(_embedding_rows, plan, arrow_id),
                             schema)
    return Trained(embeddings.withColumn(C.ID, F.col(C.ID).cast(id_field)), plan.epochs,
                   {"pairs": pairs, "diagonal_share": round(diagonal / pairs, 4),
                    "row_visits": visits} if pairs else {})


class PartStats(NamedTuple):
    """A node partition's vocabulary: its nodes, its unigram^0.75 mass (not normalised) and its
    tokens."""

    nodes: int
    mass: float
    tokens: int


def _vocabulary(spark: SparkSession, counts: DataFrame, nodes: int, P: int, chosen: str,
                walks: DataFrame, cfg: TrainConfig, folder: str) -> dict[int, PartStats]:
    """Counts (id, count) -> the vocabulary at folder (id, count, rank, local; by part): rank is
    a node's place by count (most frequent first, ties by id: its initial vector, the same
    whatever P); part and local are where its rows live (`chosen`: layout.py for the graph
    layout; with the frequency layout rank r is row r // P of partition r % P: nodes dealt
    round-robin by frequency). `counts` and `nodes` as frames.cached_count returns them. Up to
    RANK_IN_ONE_TASK nodes, one task ranks them (Spark's ranking takes ~10 jobs, seconds on a
    small graph)."""
    if nodes <= RANK_IN_ONE_TASK:
        ranked = counts.repartition(1).mapInArrow(
            _ranked_vocabulary,
            T.StructType([counts.schema[C.ID], T.StructField(C.COUNT, T.LongType()),
                          T.StructField(C.RANK, T.LongType())]))
    else:
        ranked, _ = rank_rows(counts, [F.col(C.COUNT).desc(), F.col(C.ID)], C.RANK,
                              spark.sparkContext.defaultParallelism, total=nodes)
    if chosen == "graph":
        ranked = ranked.persist(StorageLevel.MEMORY_AND_DISK)  # read twice: labels, then cut
        started = time.perf_counter()
        layout.place(spark, ranked, walks, nodes, P, cfg.seed, f"{folder}-labels", folder)
        log.info("train: graph layout of %s nodes in %.1f s", f"{nodes:,}",
                 time.perf_counter() - started)
        HadoopFiles(spark, folder).delete(f"{folder}-labels")
    else:
        (ranked.select(C.ID, C.COUNT, C.RANK, (F.col(C.RANK) % P).cast("int").alias(C.PART),
                       (F.col(C.RANK) / P).cast("long").alias(C.LOCAL))
         .write.mode("overwrite").partitionBy(C.PART).parquet(folder))
    ranked.unpersist()  # (cached by rank_rows, or above)
    return {r[C.PART]: PartStats(r["nodes"], r["mass"], r["tokens"])
            for r in spark.read.parquet(folder).groupBy(C.PART).agg(
                F.count("*").alias("nodes"), F.sum(F.pow(C.COUNT, 0.75)).alias("mass"),
                F.sum(C.COUNT).alias("tokens")).collect()}  # P rows


def _ranked_vocabulary(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: every (id, count) -> (id, count, rank), ranked as Spark ranks them (ids:
    numbers by value, strings by their UTF-8 bytes, as Arrow sorts them)."""
    table = partition_table(batches)
    if table is None:
        return
    table = table.take(pc.sort_indices(table, [(C.COUNT, "descending"), (C.ID, "ascending")]))
    table = table.append_column(C.RANK, pa.array(np.arange(len(table), dtype=np.int64)))
    yield from table.to_batches(max_chunksize=OUTPUT_BATCH_ROWS)


def _split_tokens(spark: SparkSession, walks: DataFrame, cfg: TrainConfig, work: str,
                  warm: WarmStart | None) -> tuple[Plan, int]:
    """The vocabulary and the token files in `work`: (the plan, tokens per epoch).

    The walks pass through Spark once: a first pass turns them into token files by a hash of the
    node id (with the ids) and counts each id's tokens; the vocabulary ranks the counts (a table
    of nodes, not of tokens); a second pass in Python tasks reads each bucket's files and
    rewrites its tokens by their node's partition, with the node's row for its id. (Joining the
    tokens to the vocabulary in Spark shuffled every token through the JVM a second time: 29 s
    of the 20k-node benchmark graph's 16M tokens.)"""
    describe(spark, "spark-n2v train: tokens by node, vocabulary")
    started = time.perf_counter()
    spark_id, arrow_id = token_id_types(walks.schema[C.WALK].dataType.elementType)
    local = TaskFiles(work).local
    # a bucket's tokens are what a second-pass task holds at once
    buckets = max(4 * walks.rdd.getNumPartitions(), 2 * spark.sparkContext.defaultParallelism)
    by_id = f"{work}/tokens-by-id"
    walks = walks.select(F.col(C.WALK_ID).cast("long"),
                         F.col(C.WALK).cast(T.ArrayType(spark_id)).alias(C.WALK))
    first = _first_pass if local else _first_pass_in_spark
    counts = first(walks, cfg, by_id, spark_id, arrow_id, buckets)
    if warm is not None:
        counts.agg(F.count("*")).first()  # the first pass: its token files, not its counts
        counts = warm.counts.select(F.col(C.ID).cast(spark_id).alias(C.ID),
                                    F.col(C.COUNT).cast("long"))
    if cfg.min_count > 1:
        counts = counts.where(F.col(C.COUNT) >= cfg.min_count)
    # cached: the first pass runs once, in this count
    counts, nodes = cached_count(counts, spark.sparkContext.defaultParallelism)
    if nodes == 0:
        raise UserError("the walks table has no nodes to train on (empty walks, or "
                        "{train.min_count} above every node's count)")
    P = cfg.partitions or auto_partitions(nodes, cfg.dim)
    if nodes / P < SMALL_PARTITION_NODES:
        log.warning("train: %d partitions leave about %d nodes per partition; partitions this "
                    "small train worse (77-node demo graph: macro-F1 0.96 at P = 1 and 4, 0.80 at "
                    "P = 16): leave train.partitions unset for this graph", P, nodes // P)
    chosen = cfg.layout if P > 1 else "frequency"  # (one partition: nothing to keep together)
    per_part = _vocabulary(spark, counts, nodes, P, chosen, walks, cfg, f"{work}/vocab")
    counts.unpersist()  # (the Spark ranking released it already)
    vocab = spark.read.parquet(f"{work}/vocab")
    mass = sum(r.mass for r in per_part.values())
    counted = sum(r.tokens for r in per_part.values())
    epochs = cfg.epochs or auto_epochs(counted, nodes)
    if cfg.epochs is None:
        log.info("train: %d epoch%s (%.0f tokens a node; --epochs sets it)", epochs,
                 "" if epochs == 1 else "s", counted / nodes)
    plan = Plan(work=work, partitions=P, dim=cfg.dim, negatives=cfg.negatives,
                learning_rate=cfg.learning_rate, epochs=epochs, chunks=cfg.chunks,
                seed=cfg.seed,
                sizes=tuple(per_part[i].nodes if i in per_part else 0 for i in range(P)),
                shares=tuple(per_part[i].mass / mass if i in per_part else 0.0
                             for i in range(P)),
                warm=warm.model if warm is not None else None,
                layout=chosen)
    if warm is not None:
        _warm_map(spark, vocab, warm, work)
    log.info("train: vocabulary of %s nodes in %.1f s", f"{nodes:,}", time.perf_counter() - started)
    describe(spark, "spark-n2v train: tokens by partition")
    started = time.perf_counter()
    vocab = vocab.select(F.col(C.ID).cast(spark_id).alias(C.ID), C.PART, C.LOCAL)
    second = _second_pass if local else _second_pass_in_spark
    tokens = second(spark, vocab, by_id, f"{work}/tokens", buckets)
    HadoopFiles(spark, work).delete(by_id)
    log.info("train: %s tokens split into %d partitions in %.1f s; %d rounds of %d tasks",
             f"{tokens:,}", P, time.perf_counter() - started, plan.rounds, P)
    return plan, tokens


def _first_pass(walks: DataFrame, cfg: TrainConfig, by_id: str, spark_id: T.DataType,
                arrow_id: pa.DataType, buckets: int) -> DataFrame:
    """Python tasks write the walks' tokens into by_id/bucket=b files by a hash of the node id
    (with the ids) and count each id's tokens: the counts (id, count), lazily (computing them
    writes the files)."""
    body = functools.partial(_bucket_tokens, by_id, cfg.seed, cfg.window, cfg.chunks, arrow_id)
    return (walks.withColumn(C.BUCKET, F.transform(C.WALK, lambda n: _bucket_of(n, buckets)))
            .mapInArrow(body, T.StructType([T.StructField(C.ID, spark_id),
                                            T.StructField(C.COUNT, T.LongType())]))
            .groupBy(C.ID).agg(F.sum(C.COUNT).alias(C.COUNT)))


def _second_pass(spark: SparkSession, vocab: DataFrame, by_id: str, tokens: str, buckets: int
                 ) -> int:
    """Python tasks read each bucket's token files with the bucket's vocabulary rows and rewrite
    the tokens by partition and chunk (tokens/part=i/chunk=c). Returns the tokens written."""
    body = functools.partial(_split_buckets, by_id, tokens)
    return int(vocab.withColumn(C.BUCKET, _bucket_of(F.col(C.ID), buckets))
               .repartition(buckets, C.BUCKET)
               .mapInArrow(body, "part int, chunk int, rows long")
               .agg(F.sum("rows")).first()[0] or 0)


def _first_pass_in_spark(walks: DataFrame, cfg: TrainConfig, by_id: str, spark_id: T.DataType,
                         arrow_id: pa.DataType, buckets: int) -> DataFrame:
    """The first pass where the work folder is not on local disk: Spark writes the tokens (they
    are read twice: counted here, joined to the vocabulary in the second pass)."""
    schema = T.StructType([T.StructField(C.WALK_ID, T.LongType()),
                           T.StructField(C.CHUNK, T.IntegerType()),
                           T.StructField(C.POS, T.IntegerType()),
                           T.StructField(C.ID, spark_id), T.StructField(C.WIN, T.ShortType())])
    body = functools.partial(_token_rows, cfg.seed, cfg.window, cfg.chunks, arrow_id)
    walks.mapInArrow(body, schema).write.mode("overwrite").parquet(by_id)
    return (walks.sparkSession.read.parquet(by_id).groupBy(C.ID)
            .agg(F.count("*").alias(C.COUNT)))


def _second_pass_in_spark(spark: SparkSession, vocab: DataFrame, by_id: str, tokens: str,
                          buckets: int) -> int:
    """The second pass where the work folder is not on local disk: the tokens joined to their
    node's row, written by Spark by partition and chunk."""
    (spark.read.parquet(by_id).join(vocab, C.ID)
     .select(*_TOKEN_FILE_COLUMNS, C.PART, C.CHUNK)
     .write.mode("overwrite").partitionBy(C.PART, C.CHUNK).parquet(tokens))
    return spark.read.parquet(tokens).count()
