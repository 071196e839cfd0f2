"""Skip-gram with negative sampling: the numpy kernel one training task runs on one bucket.

word2vec's skip-gram, as node2vec trains it: for the centre at position c of a walk, a reduced
window w_c drawn uniformly from 1..window; every context r with 0 < |r - c| <= w_c trains the input
vector syn0[walk[r]] against the output vector syn1[walk[c]] (label 1) and `negatives` outputs drawn
from unigram^0.75 (label 0); the learning rate decays linearly to 1e-4 of its start.

What differs, so that the work is matrix products rather than a loop per pair:
- A walk's pairs are scored at once: S = U V^T for the walk's input rows U and output rows V, masked
  to the reduced windows (a band around the diagonal), for a batch of walks as one stacked product.
  BLAS wastes the scores outside the band but still beats a loop over pairs (~270k tokens/s per
  thread at P = 1 against gensim's ~70k).
- Negatives are shared by a walk's rows: `shared` draws per walk, each row weighted so that its
  expected negative updates are word2vec's (negatives x its pair count in the bucket).
- A snapshot's updates (~1024 rows, ~12 walks of 80) are computed from the same tables and applied
  together: the update is the exact gradient of the snapshot's objective (tested). A snapshot is
  computed as two batches, so that two processes can compute it at once (`workers`); the tables
  are the same whether one process or two computed it.

Buckets: nodes are split into P partitions; bucket (i, j) holds the pairs whose input node is in
partition i and whose output node is in partition j, and trains syn0[i] against syn1[j] only.
Negatives of bucket (i, j) come from partition j's unigram^0.75 law, `negatives` per pair of the
bucket (as PyTorch-BigGraph samples negatives within a bucket): a row's negatives follow its
contexts' partitions, and since nodes are dealt to partitions round-robin by frequency, each
partition holds about 1/P of both the contexts and the unigram^0.75 mass, so over the P buckets the
negatives follow the global law. A bucket trains only the tokens with a pair in it (`paired`),
but a token has pairs in every partition its windows reach (most of the 16 at P = 16, window 10):
the pairs are the same whatever P, the rows gathered and scattered grow with P (measured:
bench/results/train-2026-12-02-0142.md, train 114 s at P = 1, 198 s at P = 4, 568 s at P = 16).
"""

from __future__ import annotations

import mmap
import multiprocessing
import threading
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from spark_n2v.streams import SGNS_CHUNK, SGNS_INIT, SGNS_NEGATIVE, SGNS_WINDOW, uniforms

MIN_LR_FRACTION = 1e-4  # word2vec and gensim decay the learning rate to start x 1e-4
SNAPSHOT_ROWS = 1024    # rows updated from one snapshot: ~12 walks of 80 at P = 1
# A row repeated c times in a batch takes min(c, REPEAT_CAP) times its mean update (see
# scatter_add). Measured: 77-node demo graph, lr 0.025: 16 diverges, 4 and 1 do not; 20k-node
# benchmark graph: macro-F1 0.9038 with 4, 0.9034 uncapped.
REPEAT_CAP = 4.0
# Batches computed from one snapshot of the tables, then added together: the most processes a
# task can train with. A constant, so that the embeddings do not depend on the processes.
SNAPSHOT_BATCHES = 2
WORKER_TIMEOUT_S = 600.0  # a worker silent this long is taken for dead


@dataclass(frozen=True)
class Tokens:
    """One partition's tokens of the walks, sorted by (walk, pos): `local` is the node's row in the
    partition's table, `win` the reduced window of the position as a centre."""

    walk: np.ndarray   # int64 walk_id
    pos: np.ndarray    # int32 position in the walk
    local: np.ndarray  # int64 row in the partition's table
    win: np.ndarray    # int16

    @staticmethod
    def sorted(walk, pos, local, win) -> "Tokens":
        order = np.lexsort((pos, walk))
        return Tokens(np.asarray(walk, np.int64)[order], np.asarray(pos, np.int32)[order],
                      np.asarray(local, np.int64)[order], np.asarray(win, np.int16)[order])

    def __len__(self) -> int:
        return len(self.walk)

    def subset(self, keep: np.ndarray) -> "Tokens":
        """The tokens where `keep` is true, still sorted."""
        return Tokens(self.walk[keep], self.pos[keep], self.local[keep], self.win[keep])


def reduced_windows(seed: int, walk_id: np.ndarray, pos: np.ndarray, window: int) -> np.ndarray:
    """The centre's reduced window, uniform on 1..window, from (seed, walk, position)."""
    u = uniforms(seed, walk_id, pos, 0, SGNS_WINDOW)
    return (1 + np.floor(u * window)).astype(np.int32)


def chunk_of(seed: int, walk_id: np.ndarray, chunks: int) -> np.ndarray:
    """The chunk of the epoch a walk trains in (uniform on 0..chunks-1, whatever P)."""
    return np.floor(uniforms(seed, walk_id, 0, 0, SGNS_CHUNK) * chunks).astype(np.int32)


def initial_vectors(seed: int, rank: np.ndarray, dim: int) -> np.ndarray:
    """word2vec's input initialisation, uniform on (-0.5/dim, 0.5/dim), from each node's global
    rank: the same start whatever the number of partitions."""
    u = uniforms(seed, rank[:, None], np.arange(dim)[None, :], 0, SGNS_INIT)
    return ((u - 0.5) / dim).astype(np.float32)


def negative_table(counts: np.ndarray) -> np.ndarray:
    """Cumulative unigram^0.75 of one partition's nodes (in row order), normalised to end at 1."""
    mass = np.cumsum(np.asarray(counts, np.float64) ** 0.75)
    return mass / mass[-1]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp overflows to inf for very negative x: sigmoid 0, right
        return 1.0 / (1.0 + np.exp(-x))


def scatter_add(table: np.ndarray, rows: np.ndarray, updates: np.ndarray,
                repeat_cap: float = np.inf) -> None:
    """table[rows] += updates where rows may repeat (hubs repeat within a batch), a row repeated
    c times getting its summed update x min(1, repeat_cap / c).

    The cap keeps hubs stable: a batch's updates are computed from one snapshot of the tables, so
    a row repeated c times takes a step c times as long as word2vec's sequential updates would,
    and on a small graph (77 nodes, so every node repeats in every batch) the tables diverged to
    NaN within one epoch at the default learning rate.

    np.add.at is slow per row (measured: 880 us for 600 rows of 128 floats); instead rows are
    sorted and each row's updates summed in their order by np.add.reduceat, so a row's sum does
    not depend on the other rows given (workers adding their own rows of one update get the sums
    one process gets).
    """
    order = np.argsort(rows, kind="stable")
    ranked = rows[order]
    first = np.r_[True, ranked[1:] != ranked[:-1]]
    if first.all():
        table[rows] += updates
        return
    last = np.r_[first[1:], True]
    single = first & last  # reduceat is slow per group: rows seen once are added as they are
    table[ranked[single]] += updates[order[single]]
    repeated = ~single
    starts = np.flatnonzero(first[repeated])
    summed = np.add.reduceat(updates[order[repeated]], starts, axis=0)
    if np.isfinite(repeat_cap):
        counts = np.diff(np.r_[starts, repeated.sum()]).astype(updates.dtype)
        summed *= np.minimum(1.0, repeat_cap / counts)[:, None]
    table[ranked[repeated & first]] += summed


def paired(rows: Tokens, cols: Tokens) -> tuple[Tokens, Tokens]:
    """The rows with a pair among cols and the cols with a pair among rows: a bucket trains only
    the positions that have contexts in it (a token whose walk passes through the bucket's other
    partition only far from it costs nothing there). Row r and column c pair when they are in the
    same walk and 0 < |pos_r - pos_c| <= win_c; with rows is cols (bucket (i, i)) a token is not
    its own pair."""
    if len(rows) == 0 or len(cols) == 0:
        return rows.subset(np.zeros(len(rows), bool)), cols.subset(np.zeros(len(cols), bool))
    same = rows is cols
    walks = np.unique(rows.walk if same else np.concatenate([rows.walk, cols.walk]))
    # one line of keys, walk after walk, with a gap wider than any window between walks
    widest = int(cols.win.max())
    span = int(max(rows.pos.max(), cols.pos.max())) + 2 * widest + 2
    row_key = np.searchsorted(walks, rows.walk) * span + rows.pos
    col_key = np.searchsorted(walks, cols.walk) * span + cols.pos
    win = cols.win.astype(np.int64)
    lo, hi = np.sort(col_key - win), np.sort(col_key + win)
    covering = np.searchsorted(lo, row_key, "right") - np.searchsorted(hi, row_key, "left")
    near = (np.searchsorted(row_key, col_key + win, "right")
            - np.searchsorted(row_key, col_key - win, "left"))
    rows_ok, cols_ok = covering > int(same), near > int(same)
    if rows_ok.all() and cols_ok.all():
        return rows, cols
    return rows.subset(rows_ok), cols.subset(cols_ok)


class BatchPlan:
    """The bucket's walks in order (those with both rows and columns), in batches of about `limit`
    rows (whole walks). Batches are made when asked for, so that a bucket's index matrices are
    never all in memory at once."""

    def __init__(self, rows: Tokens, cols: Tokens, limit: int):
        starts = np.flatnonzero(np.r_[True, rows.walk[1:] != rows.walk[:-1]]) if len(rows) \
            else np.zeros(0, np.int64)
        counts = np.diff(np.r_[starts, len(rows)])
        walk = rows.walk[starts]
        col_lo = np.searchsorted(cols.walk, walk, "left")
        col_counts = np.searchsorted(cols.walk, walk, "right") - col_lo
        both = col_counts > 0  # a walk without columns in this bucket has no pair in it
        self.starts, self.counts, self.walk, self.col_lo, self.col_counts = (
            a[both] for a in (starts, counts, walk, col_lo, col_counts))
        # walks in the same stretch of `limit` rows train together
        group = (np.cumsum(self.counts) - self.counts) // limit
        self.edges = np.flatnonzero(np.r_[True, group[1:] != group[:-1], True]) \
            if len(self.walk) else np.zeros(1, np.int64)

    def __len__(self) -> int:
        return len(self.edges) - 1

    def batch(self, k: int) -> "Batch":
        w0, w1 = self.edges[k], self.edges[k + 1]
        rows_at, rows_ok = _padded(self.starts[w0:w1], self.counts[w0:w1])
        cols_at, cols_ok = _padded(self.col_lo[w0:w1], self.col_counts[w0:w1])
        return Batch(self.walk[w0:w1], rows_at, rows_ok, cols_at, cols_ok, int(self.starts[w0]))

    def most(self, shared: int) -> tuple[int, int]:
        """The most (output rows, input rows) a batch updates: columns plus `shared` negatives
        per walk, and rows."""
        if len(self) == 0:
            return 0, 0
        at = self.edges[:-1]
        walks = np.diff(self.edges)
        outputs = np.add.reduceat(self.col_counts, at) + walks * shared
        return int(outputs.max()), int(np.add.reduceat(self.counts, at).max())


def _padded(first: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index matrix first[k] + 0..counts[k]-1 per row k, padded with 0 (a valid index whenever
    the matrix has columns at all), and its mask."""
    width = np.arange(int(counts.max()))
    ok = width[None, :] < counts[:, None]
    return np.where(ok, first[:, None] + width[None, :], 0), ok


@dataclass(frozen=True)
class Batch:
    walk: np.ndarray     # (B,) walk ids
    rows: np.ndarray     # (B, n) indices into the bucket's rows
    rows_ok: np.ndarray  # (B, n) bool
    cols: np.ndarray     # (B, m) indices into the bucket's cols
    cols_ok: np.ndarray  # (B, m) bool
    first_row: int       # index of the batch's first row (for the learning-rate schedule)


@dataclass(frozen=True)
class BucketLaw:
    """How one bucket trains: learning rate from lr_start to lr_end over its rows, `negatives` per
    pair in expectation drawn from partition j's unigram^0.75 law as `shared` draws per walk, and
    the random key of the bucket."""

    lr_start: float
    lr_end: float
    negatives: int
    shared: int
    seed: int
    key: int
    repeat_cap: float = REPEAT_CAP


def batch_rows(rows_i: int, rows_j: int, law: BucketLaw) -> int:
    """Rows per batch: a snapshot's share of SNAPSHOT_ROWS, but a snapshot at most repeat_cap x
    the smaller table, so that on small tables the mean row repeats under the cap and only hubs
    reach it. Measured on the 77-node demo graph (bench/train.py, 50 splits): P = 4 (19-node
    tables) macro-F1 0.877 with 512-row batches, 0.974 with this limit; P = 1 0.963 and 0.964."""
    snapshot = min(SNAPSHOT_ROWS, law.repeat_cap * min(rows_i, rows_j))
    return int(max(1, snapshot // SNAPSHOT_BATCHES))


class Update(NamedTuple):
    """One batch's updates, computed from a snapshot of the tables, to be added in batch order."""

    out_rows: np.ndarray   # rows of syn1 (may repeat)
    out_step: np.ndarray   # their updates
    in_rows: np.ndarray    # rows of syn0 (may repeat)
    in_step: np.ndarray
    loss: float            # sum of positive-pair losses, on sampled batches only
    pairs: int


def batch_update(syn0: np.ndarray, syn1: np.ndarray, rows: Tokens, cols: Tokens,
                 neg_cum: np.ndarray, law: BucketLaw, batch: Batch, lr: np.float32,
                 sampled: bool) -> Update:
    """The batch's gradient-ascent step on its part of the skip-gram objective."""
    u = uniforms(law.seed, batch.walk[:, None], law.key, np.arange(law.shared)[None, :],
                 SGNS_NEGATIVE)
    negs = np.minimum(np.searchsorted(neg_cum, u, "right"), len(neg_cum) - 1)
    m = batch.cols.shape[1]
    outputs = np.concatenate([cols.local[batch.cols], negs], axis=1)  # (B, m + shared)
    U = syn0[rows.local[batch.rows]]                                  # (B, n, d)
    V = syn1[outputs]                                                  # (B, m + shared, d)
    S = _sigmoid(U @ V.transpose(0, 2, 1))
    dist = np.abs(rows.pos[batch.rows][:, :, None] - cols.pos[batch.cols][:, None, :])
    mask = ((dist > 0) & (dist <= cols.win[batch.cols][:, None, :])
            & batch.rows_ok[:, :, None] & batch.cols_ok[:, None, :])
    row_pairs = mask.sum(axis=2, dtype=np.float32)  # (B, n): padding and pairless rows 0
    loss, pairs = 0.0, 0
    if sampled:  # the loss is for progress reports: a sample of batches is enough
        loss = -float(np.log(np.maximum(S[:, :, :m][mask], 1e-12)).sum())
        pairs = int(row_pairs.sum())
    # d log sigmoid(s) / ds = 1 - sigmoid(s) for pairs, -sigmoid(s) for negatives; row r's
    # negatives weigh negatives x pairs(r) / shared
    G = np.empty_like(S)
    G[:, :, :m] = (1.0 - S[:, :, :m]) * mask * lr
    G[:, :, m:] = S[:, :, m:] * (row_pairs * (-np.float32(law.negatives / law.shared) * lr))[
        :, :, None]
    out_ok = np.concatenate([batch.cols_ok, np.ones(negs.shape, bool)], axis=1)
    live = row_pairs > 0  # rows without a pair here have a zero update
    return Update(outputs[out_ok], (G.transpose(0, 2, 1) @ U)[out_ok],
                  rows.local[batch.rows][live], (G @ V)[live], loss, pairs)


def apply_updates(syn0: np.ndarray, syn1: np.ndarray, updates: list[Update],
                  repeat_cap: float, worker: int = 0, workers: int = 1) -> None:
    """Add a snapshot's updates (in batch order) to the tables, as one: a row repeated c times in
    the snapshot takes min(1, repeat_cap / c) of its summed update. With several workers, worker
    w adds the rows r with r mod workers = w of both tables (a row's sum depends on its own
    updates only, so the tables are the same). By table instead (worker 0 syn1, worker 1 syn0),
    the worker adding syn1 and its negatives kept the other waiting: rounds at 177k tokens/s
    against 204k by row (skewed bench graph, P = 1)."""
    def mine(rows: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if workers == 1:
            return rows, steps
        keep = rows % workers == worker
        return rows[keep], steps[keep]

    for table, parts in ((syn1, [mine(u.out_rows, u.out_step) for u in updates]),
                         (syn0, [mine(u.in_rows, u.in_step) for u in updates])):
        scatter_add(table, np.concatenate([r for r, _ in parts]),
                    np.concatenate([s for _, s in parts]), repeat_cap)


def train_bucket(syn0: np.ndarray, syn1: np.ndarray, rows: Tokens, cols: Tokens,
                 neg_cum: np.ndarray, law: BucketLaw, workers: int = 1) -> tuple[float, int]:
    """Train input table syn0 (partition i) against output table syn1 (partition j) in place on
    the pairs of rows (partition i's tokens) and cols (partition j's tokens: centres, with their
    reduced windows). Returns (sum of positive-pair losses, number of positive pairs), both
    over a sample of the batches (for progress lines).

    Batches go in snapshots of SNAPSHOT_BATCHES: each batch of a snapshot is computed from the
    tables as the snapshot found them, then the snapshot's updates are added as one. `workers`
    processes share the work (batch b of a snapshot is computed by worker b mod workers; then
    worker w adds the snapshot's updates of the rows r with r mod workers = w), so the embeddings
    do not depend on it."""
    rows, cols = paired(rows, cols)
    plan = BatchPlan(rows, cols, batch_rows(len(syn0), len(syn1), law))
    workers = max(1, min(workers, SNAPSHOT_BATCHES))
    if len(plan) == 0:
        return 0.0, 0
    if workers == 1 or len(plan) <= SNAPSHOT_BATCHES:  # one snapshot: not worth a process
        return _train_snapshots(syn0, syn1, rows, cols, neg_cum, law, plan, 0, None)
    return _train_forked(syn0, syn1, rows, cols, neg_cum, law, plan, workers)


def _learning_rate(law: BucketLaw, batch: Batch, rows: Tokens) -> np.float32:
    """Linear decay over the bucket's rows, from the batch's first row."""
    return np.float32(law.lr_start + (law.lr_end - law.lr_start)
                      * (batch.first_row / max(len(rows), 1)))


class _Scratch:
    """One snapshot's updates in shared memory, a slot per batch, so that a worker can add the
    batches others computed."""

    def __init__(self, plan: BatchPlan, law: BucketLaw, dim: int):
        outputs, inputs = plan.most(law.shared)
        self.sizes = _shared(np.zeros((SNAPSHOT_BATCHES, 2), np.int64))
        self.out_rows = _shared(np.zeros((SNAPSHOT_BATCHES, outputs), np.int64))
        self.out_step = _shared(np.zeros((SNAPSHOT_BATCHES, outputs, dim), np.float32))
        self.in_rows = _shared(np.zeros((SNAPSHOT_BATCHES, inputs), np.int64))
        self.in_step = _shared(np.zeros((SNAPSHOT_BATCHES, inputs, dim), np.float32))

    def put(self, slot: int, update: Update) -> None:
        n, m = len(update.out_rows), len(update.in_rows)
        self.sizes[slot] = n, m
        self.out_rows[slot, :n], self.out_step[slot, :n] = update.out_rows, update.out_step
        self.in_rows[slot, :m], self.in_step[slot, :m] = update.in_rows, update.in_step

    def get(self, slot: int) -> Update:
        n, m = self.sizes[slot]
        return Update(self.out_rows[slot, :n], self.out_step[slot, :n], self.in_rows[slot, :m],
                      self.in_step[slot, :m], 0.0, 0)


class _Barrier:
    """A barrier of forked workers on one semaphore each: a wait posts to every other worker and
    takes workers - 1 posts (~25 us, against ~150 us for multiprocessing.Barrier, twice per
    snapshot). A post from a worker already in the next wait counts for this one; that is safe,
    as that worker passed this wait only after everyone had arrived."""

    def __init__(self, context, workers: int):
        self.workers = workers
        self.posts = [context.Semaphore(0) for _ in range(workers)]
        self.broken = _shared(np.zeros(1, np.int8))

    def wait(self, worker: int) -> None:
        for other, post in enumerate(self.posts):
            if other != worker:
                post.release()
        for _ in range(self.workers - 1):
            if not self.posts[worker].acquire(timeout=WORKER_TIMEOUT_S) or self.broken[0]:
                raise threading.BrokenBarrierError

    def abort(self) -> None:
        self.broken[0] = 1
        for post in self.posts:
            for _ in range(self.workers):
                post.release()


class _Sync(NamedTuple):
    """What forked workers share besides the tables."""

    workers: int
    barrier: _Barrier
    scratch: _Scratch


def _train_snapshots(syn0, syn1, rows, cols, neg_cum, law, plan: BatchPlan, worker: int,
                     sync: _Sync | None) -> tuple[float, int]:
    """Worker `worker`'s share of every snapshot; alone (sync None) it is all of it."""
    workers = sync.workers if sync else 1
    loss, pairs = 0.0, 0
    for first in range(0, len(plan), SNAPSHOT_BATCHES):
        snapshot = range(first, min(first + SNAPSHOT_BATCHES, len(plan)))
        updates = {}
        for b, k in enumerate(snapshot):
            if b % workers == worker:
                batch = plan.batch(k)
                updates[b] = batch_update(syn0, syn1, rows, cols, neg_cum, law, batch,
                                          _learning_rate(law, batch, rows), sampled=k % 16 == 0)
                loss, pairs = loss + updates[b].loss, pairs + updates[b].pairs
                if sync:
                    sync.scratch.put(b, updates[b])
        if sync:
            sync.barrier.wait(worker)  # every batch of the snapshot computed from the same tables
            updates = {b: sync.scratch.get(b) for b in range(len(snapshot))}
        apply_updates(syn0, syn1, [updates[b] for b in range(len(snapshot))], law.repeat_cap,
                      worker, workers)
        if sync:
            sync.barrier.wait(worker)  # the snapshot added everywhere before the next is computed
    return loss, pairs


def _shared(array: np.ndarray) -> np.ndarray:
    """A copy of `array` in memory that forked processes share (anonymous MAP_SHARED)."""
    buffer = mmap.mmap(-1, max(array.nbytes, 1))
    shared = np.frombuffer(buffer, array.dtype, array.size).reshape(array.shape)
    shared[...] = array
    return shared


def _train_forked(syn0, syn1, rows, cols, neg_cum, law, plan: BatchPlan, workers: int
                  ) -> tuple[float, int]:
    """`workers` - 1 forked processes beside this one, on tables in shared memory. Whoever fails
    breaks the barrier, so the others stop too; a worker's error is raised here."""
    context = multiprocessing.get_context("fork")
    sync = _Sync(workers, _Barrier(context, workers),
                 _Scratch(plan, law, syn0.shape[1]))
    tables = _shared(syn0), _shared(syn1)
    children = []
    for w in range(1, workers):
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_worker_main, daemon=True,
                                args=(tables, rows, cols, neg_cum, law, plan, w, sync, send))
        child.start()
        send.close()
        children.append((child, receive))
    loss, pairs = 0.0, 0
    try:
        loss, pairs = _train_snapshots(*tables, rows, cols, neg_cum, law, plan, 0, sync)
    except threading.BrokenBarrierError:
        pass  # a worker failed: its answer below says why
    except BaseException:
        sync.barrier.abort()
        raise
    finally:
        answers = [_answer(child, receive) for child, receive in children]
    for w, answer in enumerate(answers, 1):
        if isinstance(answer, str):
            raise RuntimeError(f"sgns training worker {w} of {workers} failed: {answer}")
        loss, pairs = loss + answer[0], pairs + answer[1]
    syn0[...], syn1[...] = tables
    return loss, pairs


def _answer(child, receive) -> tuple[float, int] | str:
    try:
        answer = receive.recv() if receive.poll(WORKER_TIMEOUT_S) else "no answer"
    except EOFError:
        child.join(WORKER_TIMEOUT_S)
        answer = f"exited without an answer (exit code {child.exitcode})"
    child.join()
    return answer


def _worker_main(tables, rows, cols, neg_cum, law, plan, worker, sync, send) -> None:
    try:
        send.send(_train_snapshots(*tables, rows, cols, neg_cum, law, plan, worker, sync))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises
        sync.barrier.abort()
        send.send(f"{type(error).__name__}: {error}")
