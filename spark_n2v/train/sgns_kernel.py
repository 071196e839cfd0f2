"""Skip-gram with negative sampling: the numpy kernel one training task runs on one bucket.

word2vec's skip-gram, as node2vec trains it: for the centre at position c of a walk, a reduced
window w_c drawn uniformly from 1..window; every context r with 0 < |r - c| <= w_c trains the input
vector syn0[walk[r]] against the output vector syn1[walk[c]] (label 1) and `negatives` outputs drawn
from unigram^0.75 (label 0); the learning rate decays linearly to 1e-4 of its start.

What differs, so that the updates can be computed in batches and the pairs need no loop in Python:
- A batch of walks is computed from one snapshot of the tables by compiled loops (numba) over
  its (centre, context) pairs, each pair's dot product and gradient in a loop over the vector: no
  work outside the windows, whatever P (a banded matrix product per walk, the previous kernel,
  computed ~80 x 130 scores per walk to use ~11 x 80 of them at P = 1, and at P = 16 paid a
  matrix product's overhead per walk for a few rows: 0.20x P = 1's rate).
- Negatives are shared by a walk's rows: `shared` draws per walk, each row weighted so that its
  expected negative updates are word2vec's (negatives x its pair count in the bucket).
- A snapshot's updates (~1024 rows, ~12 walks of 80) are computed from the same tables and applied
  together: the update is the exact gradient of the snapshot's objective (tested). A snapshot is
  computed as two batches, so that two processes can compute it at once (`workers`); the tables
  are the same whether one process or two computed it.
- The loops' sums may be reordered by the compiler into vector lanes (fastmath "reassoc"), as
  BLAS's are: the same machine type gives the same embeddings, another vector width may differ in
  the last bits.

Buckets: nodes are split into P partitions; bucket (i, j) holds the pairs whose input node is in
partition i and whose output node is in partition j, and trains syn0[i] against syn1[j] only.
Negatives of bucket (i, j) come from partition j's unigram^0.75 law, `negatives` per pair of the
bucket (as PyTorch-BigGraph samples negatives within a bucket): a row's negatives follow its
contexts' partitions, and since nodes are dealt to partitions round-robin by frequency, each
partition holds about 1/P of both the contexts and the unigram^0.75 mass, so over the P buckets the
negatives follow the global law. A bucket trains only the tokens with a pair in it (`paired`),
but a token has pairs in every partition its windows reach (most of the 16 at P = 16, window 10):
the pairs are the same whatever P, and a row's cost is its pairs and its negatives plus one
gather and one scatter of its vector, so the work grows little with P.
"""

from __future__ import annotations

import mmap
import multiprocessing
import threading
from dataclasses import dataclass
from typing import NamedTuple

import numba
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
# Compiled once per machine (cache: beside the module, or numba's user-wide cache); vector sums
# may be reordered (see the module's note), nothing else of IEEE arithmetic is relaxed: inf and
# NaN behave (exp overflows to inf for very negative scores: sigmoid 0, right).
_compiled = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})


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


@_compiled
def _accumulate(rows, updates, mine, slot, order, counts, sums, seen):
    """Sum each row's updates in the order given into sums (rows r with r mod mine[1] = mine[0]
    only); slot[r] is row r's place in sums, -1 while it has none. Returns the rows seen."""
    for t in range(len(rows)):
        r = rows[t]
        if r % mine[1] != mine[0]:
            continue
        at = slot[r]
        if at < 0:
            at = seen
            slot[r], order[at], counts[at] = at, r, 0
            sums[at, :] = 0.0
            seen += 1
        counts[at] += 1
        for k in range(sums.shape[1]):
            sums[at, k] += updates[t, k]
    return seen


@_compiled
def _flush(table, cap, slot, order, counts, sums, seen):
    """table[r] += each row's sum, a row seen c times scaled by min(1, cap / c); slots reset."""
    for at in range(seen):
        r = order[at]
        slot[r] = -1
        scale = np.float32(1.0) if counts[at] <= cap else np.float32(cap / counts[at])
        for k in range(table.shape[1]):
            table[r, k] += sums[at, k] * scale


class Scatter:
    """Adds a snapshot's updates to a pair of tables (scatter_add of several parts at once), with
    scratch kept across a bucket's snapshots: a slot per table row (allocating it per snapshot
    would cost a pass over the table each time) and the sums of the rows seen."""

    def __init__(self, syn0: np.ndarray, syn1: np.ndarray):
        self.slots = {id(syn0): np.full(len(syn0), -1, np.int64),
                      id(syn1): np.full(len(syn1), -1, np.int64)}
        self._size(0, syn0.shape[1])

    def _size(self, rows: int, dim: int) -> None:
        self.order, self.counts = np.empty(rows, np.int64), np.empty(rows, np.int64)
        self.sums = np.empty((rows, dim), np.float32)

    def add(self, table: np.ndarray, parts: list[tuple[np.ndarray, np.ndarray]],
            repeat_cap: float, worker: int = 0, workers: int = 1) -> None:
        """table[rows] += updates over all parts, each row's updates summed in the parts' order, a
        row repeated c times scaled by min(1, repeat_cap / c); only the rows r with
        r mod workers = worker."""
        most = sum(len(rows) for rows, _ in parts)
        if most > len(self.order):
            self._size(2 * most, table.shape[1])
        slot, mine, seen = self.slots[id(table)], np.array([worker, workers], np.int64), 0
        for rows, updates in parts:
            seen = _accumulate(np.asarray(rows, np.int64), np.asarray(updates, np.float32), mine,
                               slot, self.order, self.counts, self.sums, seen)
        _flush(table, np.float64(min(repeat_cap, 1e300)), slot, self.order, self.counts,
               self.sums, seen)


def scatter_add(table: np.ndarray, rows: np.ndarray, updates: np.ndarray,
                repeat_cap: float = np.inf) -> None:
    """table[rows] += updates where rows may repeat (hubs repeat within a batch), a row repeated
    c times getting its summed update x min(1, repeat_cap / c).

    The cap keeps hubs stable: a batch's updates are computed from one snapshot of the tables, so
    a row repeated c times takes a step c times as long as word2vec's sequential updates would,
    and on a small graph (77 nodes, so every node repeats in every batch) the tables diverged to
    NaN within one epoch at the default learning rate. A row's sum depends on its own updates
    only, in their order (workers adding their own rows of one update get the sums one process
    gets)."""
    Scatter(table, table).add(table, [(rows, updates)], repeat_cap)


@_compiled
def _paired_masks(r_walk, r_pos, c_walk, c_pos, c_win, widest):
    rows_ok = np.zeros(len(r_walk), np.bool_)
    cols_ok = np.zeros(len(c_walk), np.bool_)
    first = 0
    for r in range(len(r_walk)):
        w, p = r_walk[r], r_pos[r]
        while first < len(c_walk) and (c_walk[first] < w or
                                       (c_walk[first] == w and c_pos[first] < p - widest)):
            first += 1
        c = first
        while c < len(c_walk) and c_walk[c] == w and c_pos[c] <= p + widest:
            distance = abs(c_pos[c] - p)
            if 0 < distance <= c_win[c]:
                rows_ok[r] = True
                cols_ok[c] = True
            c += 1
    return rows_ok, cols_ok


def paired(rows: Tokens, cols: Tokens) -> tuple[Tokens, Tokens]:
    """The rows with a pair among cols and the cols with a pair among rows: a bucket trains only
    the positions that have contexts in it (a token whose walk passes through the bucket's other
    partition only far from it costs nothing there). Row r and column c pair when they are in the
    same walk and 0 < |pos_r - pos_c| <= win_c (so with rows is cols, bucket (i, i), a token is
    not its own pair)."""
    if len(rows) == 0 or len(cols) == 0:
        return rows.subset(np.zeros(len(rows), bool)), cols.subset(np.zeros(len(cols), bool))
    rows_ok, cols_ok = _paired_masks(rows.walk, rows.pos, cols.walk, cols.pos, cols.win,
                                     int(cols.win.max()))
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
        self.row_spans = np.stack([self.starts, self.counts], axis=1)
        self.col_spans = np.stack([self.col_lo, self.col_counts], axis=1)
        # walks in the same stretch of `limit` rows train together
        group = (np.cumsum(self.counts) - self.counts) // limit
        self.edges = np.flatnonzero(np.r_[True, group[1:] != group[:-1], True]) \
            if len(self.walk) else np.zeros(1, np.int64)

    def __len__(self) -> int:
        return len(self.edges) - 1

    def batch(self, k: int) -> "Batch":
        w0, w1 = self.edges[k], self.edges[k + 1]
        return Batch(self.walk[w0:w1], self.row_spans[w0:w1], self.col_spans[w0:w1],
                     int(self.starts[w0]))

    def most(self, shared: int) -> tuple[int, int]:
        """The most (output rows, input rows) a batch updates: columns plus `shared` negatives
        per walk, and rows."""
        if len(self) == 0:
            return 0, 0
        at = self.edges[:-1]
        walks = np.diff(self.edges)
        outputs = np.add.reduceat(self.col_counts, at) + walks * shared
        return int(outputs.max()), int(np.add.reduceat(self.counts, at).max())


@dataclass(frozen=True)
class Batch:
    """Whole walks of a bucket: walk k's rows are the bucket's rows a to a + n for
    (a, n) = rows[k], its columns likewise."""

    walk: np.ndarray   # (B,) walk ids
    rows: np.ndarray   # (B, 2) first row, rows
    cols: np.ndarray   # (B, 2) first column, columns
    first_row: int     # index of the batch's first row (for the learning-rate schedule)


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


@_compiled
def _walks_update(syn0, syn1, r_local, r_pos, c_local, c_pos, c_win, batch_rows, batch_cols,
                  negs, lr, neg_weight, widest, sampled, out_rows, out_step, in_rows, in_step
                  ):
    """The batch's updates, walk after walk: the walk's columns then its negatives are its output
    rows, its rows with a pair its input rows. Returns (outputs, inputs, loss, pairs)."""
    one = np.float32(1.0)
    outputs, inputs, loss, sampled_pairs = 0, 0, 0.0, 0
    for w in range(len(batch_rows)):
        r0, rn = batch_rows[w]
        c0, cn = batch_cols[w]
        first_out = outputs
        for c in range(cn):
            out_rows[outputs] = c_local[c0 + c]
            out_step[outputs, :] = 0.0
            outputs += 1
        for n in range(negs.shape[1]):
            out_rows[outputs] = negs[w, n]
            out_step[outputs, :] = 0.0
            outputs += 1
        near = 0  # the walk's first column within `widest` of the row (rows go up in pos)
        for r in range(rn):
            u = syn0[r_local[r0 + r]]
            p = r_pos[r0 + r]
            step = in_step[inputs]
            step[:] = 0.0
            pairs = 0
            while near < cn and c_pos[c0 + near] < p - widest:
                near += 1
            c = near
            while c < cn and c_pos[c0 + c] <= p + widest:
                distance = abs(c_pos[c0 + c] - p)
                if 0 < distance <= c_win[c0 + c]:
                    v = syn1[c_local[c0 + c]]
                    score = np.float32(0.0)
                    for k in range(len(u)):
                        score += u[k] * v[k]
                    fit = one / (one + np.exp(-score))
                    if sampled:
                        loss -= np.log(max(fit, 1e-12))
                    g = (one - fit) * lr  # d log sigmoid(s) / ds = 1 - sigmoid(s)
                    out = out_step[first_out + c]
                    for k in range(len(u)):  # loops, not step += g * v: no temporary arrays
                        step[k] += g * v[k]
                        out[k] += g * u[k]
                    pairs += 1
                c += 1
            if pairs == 0:  # rows without a pair here have no update (and no negatives)
                continue
            if sampled:
                sampled_pairs += pairs
            # d log sigmoid(-s) / ds = -sigmoid(s); the row's negatives weigh
            # negatives x pairs / shared
            weight = -neg_weight * np.float32(pairs) * lr
            for n in range(negs.shape[1]):
                v = syn1[negs[w, n]]
                score = np.float32(0.0)
                for k in range(len(u)):
                    score += u[k] * v[k]
                g = weight / (one + np.exp(-score))
                out = out_step[first_out + cn + n]
                for k in range(len(u)):
                    step[k] += g * v[k]
                    out[k] += g * u[k]
            in_rows[inputs] = r_local[r0 + r]
            inputs += 1
    return outputs, inputs, loss, sampled_pairs


def batch_update(syn0: np.ndarray, syn1: np.ndarray, rows: Tokens, cols: Tokens,
                 neg_cum: np.ndarray, law: BucketLaw, batch: Batch, lr: np.float32,
                 sampled: bool, slots: _Slots, slot: int) -> Update:
    """The batch's gradient-ascent step on its part of the skip-gram objective, into the slot."""
    u = uniforms(law.seed, batch.walk[:, None], law.key, np.arange(law.shared)[None, :],
                 SGNS_NEGATIVE)
    negs = np.minimum(np.searchsorted(neg_cum, u, "right"), len(neg_cum) - 1)
    outputs, inputs, loss, pairs = _walks_update(
        syn0, syn1, rows.local, rows.pos, cols.local, cols.pos, cols.win, batch.rows,
        batch.cols, negs, np.float32(lr), np.float32(law.negatives / law.shared),
        int(cols.win.max()), sampled, slots.out_rows[slot], slots.out_step[slot],
        slots.in_rows[slot], slots.in_step[slot])
    slots.sizes[slot] = outputs, inputs
    return slots.get(slot)._replace(loss=loss, pairs=pairs)


def apply_updates(syn0: np.ndarray, syn1: np.ndarray, updates: list[Update],
                  scatter: Scatter, repeat_cap: float, worker: int = 0, workers: int = 1
                  ) -> None:
    """Add a snapshot's updates (in batch order) to the tables, as one: a row repeated c times in
    the snapshot takes min(1, repeat_cap / c) of its summed update. With several workers, worker
    w adds the rows r with r mod workers = w of both tables (a row's sum depends on its own
    updates only, so the tables are the same). By table instead (worker 0 syn1, worker 1 syn0),
    the worker adding syn1 and its negatives kept the other waiting: rounds at 177k tokens/s
    against 204k by row (skewed bench graph, P = 1)."""
    scatter.add(syn1, [(u.out_rows, u.out_step) for u in updates], repeat_cap, worker, workers)
    scatter.add(syn0, [(u.in_rows, u.in_step) for u in updates], repeat_cap, worker, workers)


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


class _Slots:
    """One snapshot's updates, a slot per batch, computed in place (in memory forked processes
    share when `shared`, so that a worker can add the batches others computed)."""

    def __init__(self, plan: BatchPlan, law: BucketLaw, dim: int, shared: bool):
        outputs, inputs = plan.most(law.shared)
        place = _shared if shared else (lambda array: array)
        self.sizes = place(np.zeros((SNAPSHOT_BATCHES, 2), np.int64))
        self.out_rows = place(np.zeros((SNAPSHOT_BATCHES, outputs), np.int64))
        self.out_step = place(np.zeros((SNAPSHOT_BATCHES, outputs, dim), np.float32))
        self.in_rows = place(np.zeros((SNAPSHOT_BATCHES, inputs), np.int64))
        self.in_step = place(np.zeros((SNAPSHOT_BATCHES, inputs, dim), np.float32))

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
    slots: _Slots


def _train_snapshots(syn0, syn1, rows, cols, neg_cum, law, plan: BatchPlan, worker: int,
                     sync: _Sync | None) -> tuple[float, int]:
    """Worker `worker`'s share of every snapshot; alone (sync None) it is all of it."""
    workers = sync.workers if sync else 1
    slots = sync.slots if sync else _Slots(plan, law, syn0.shape[1], shared=False)
    loss, pairs = 0.0, 0
    scatter = Scatter(syn0, syn1)
    for first in range(0, len(plan), SNAPSHOT_BATCHES):
        snapshot = range(first, min(first + SNAPSHOT_BATCHES, len(plan)))
        for b, k in enumerate(snapshot):
            if b % workers == worker:
                batch = plan.batch(k)
                update = batch_update(syn0, syn1, rows, cols, neg_cum, law, batch,
                                      _learning_rate(law, batch, rows), k % 16 == 0, slots, b)
                loss, pairs = loss + update.loss, pairs + update.pairs
        if sync:
            sync.barrier.wait(worker)  # every batch of the snapshot computed from the same tables
        apply_updates(syn0, syn1, [slots.get(b) for b in range(len(snapshot))], scatter,
                      law.repeat_cap, worker, workers)
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
                 _Slots(plan, law, syn0.shape[1], shared=True))
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
