"""Skip-gram with negative sampling: the compiled kernel one training task runs on one bucket.

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
  expected negative updates are word2vec's (negatives x its pair count in the bucket), and a
  walk's (row, negative) scores and updates are computed as matrix products.
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
contexts' partitions. With nodes dealt round-robin by frequency that is close to the global law;
with partitions by community (layout.py) more of them come from the row's own community. They
stay with the pairs all the same: a context's updates keep word2vec's balance of positive and
negative within each round, and drawing each context's negatives from a partition drawn by the
global law instead (in whichever round trains that partition) trained worse at P > 1 on the
benchmark graphs. A bucket trains only the tokens with a pair in it (`paired`), but a token has
pairs in every partition its windows reach: a row's cost is its pairs and its negatives plus one
gather and one scatter of its vector in each bucket it is a row of.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import threading
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np

from spark_n2v.streams import SGNS_CHUNK, SGNS_INIT, SGNS_NEGATIVE, SGNS_WINDOW, uniforms

# The compiled loops' matrix products (np.dot: SciPy's BLAS, loaded when first compiled or
# loaded from the cache) are a walk's size; a task's parallelism is its own processes (`workers`),
# and BLAS threads beside them would only compete for the same cores.
for _threads in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

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
_FASTMATH = {"reassoc", "contract"}
# A walk's negatives as matrix products from this many (row, negative) scores; fewer (P > 1: a
# bucket's walk has a few rows and ceil(50 / P) negatives) in loops, as the products' fixed cost
# (~6 us: gathers, 3 BLAS calls) outweighs them. Measured 2026-12-03 (2M tokens of the benchmark
# graph, one process, P = 16 / P = 4 kernel s): always products 19.0 / -, 64: 13.1 / -, 128:
# 12.7 / 8.8, 256: 10.5 / 10.7, 512: - / 12.7, loops only (the previous kernel) 11.9 / -.
GEMM_MIN_SCORES = 128


def _compiled(function):
    """Compiled on first call, once per machine: cached beside the module or in numba's user-wide
    cache (a zip shipped with --py-files: the user-wide cache). Where neither can be written
    (read-only installs, no home folder), each process compiles for itself rather than fail.
    Vector sums may be reordered (see the module's note); nothing else of IEEE arithmetic is
    relaxed: inf and NaN behave (exp overflows to inf for very negative scores: sigmoid 0, right)."""
    try:
        return numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, fastmath=_FASTMATH)(function)


@dataclass(frozen=True)
class Tokens:
    """One partition's tokens of the walks, sorted by (walk, pos): `local` is the node's row in the
    partition's table, `win` the reduced window of the position as a centre. All int64, so that
    the compiled loops are compiled for one type."""

    walk: np.ndarray   # walk_id
    pos: np.ndarray    # position in the walk
    local: np.ndarray  # row in the partition's table
    win: np.ndarray

    @staticmethod
    def sorted(walk, pos, local, win) -> "Tokens":
        order = np.lexsort((pos, walk))
        return Tokens(*(np.asarray(a, np.int64)[order] for a in (walk, pos, local, win)))

    def stacked(self) -> np.ndarray:
        """(4, n): walk, pos, local, win (one file per partition and chunk)."""
        return np.stack([self.walk, self.pos, self.local, self.win])

    @staticmethod
    def of_stacked(array: np.ndarray) -> "Tokens":
        return Tokens(*array)

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


# --- the compiled loops -------------------------------------------------------------------------

class Bucket(NamedTuple):
    """A bucket's pairs as the compiled loops take them: its rows and columns (Tokens' arrays), its
    walks with pairs (each walk's first row and rows, first column and columns, and `shared`
    negatives: output rows), batches of whole walks (batch k is walks edges[k] to edges[k + 1],
    trained at learning rate lrs[k]), and the weight of a row's negatives per pair."""

    r_local: np.ndarray
    r_pos: np.ndarray
    c_local: np.ndarray
    c_pos: np.ndarray
    c_win: np.ndarray
    row_spans: np.ndarray  # (W, 2)
    col_spans: np.ndarray  # (W, 2)
    negs: np.ndarray       # (W, shared) int32: a bucket's walks x 8-50 draws
    edges: np.ndarray      # (batches + 1,)
    lrs: np.ndarray        # (batches,) float32
    neg_weight: np.float32  # negatives / shared
    widest: int            # the widest window of a column

    @property
    def batches(self) -> int:
        return len(self.edges) - 1

    @property
    def snapshots(self) -> int:
        return -(-self.batches // SNAPSHOT_BATCHES)

    def most(self) -> tuple[int, int]:
        """The most (output rows, input rows) a batch updates: columns plus the negatives of its
        walks, and rows."""
        at = self.edges[:-1]
        outputs = (np.add.reduceat(self.col_spans[:, 1], at)
                   + np.diff(self.edges) * self.negs.shape[1])
        return int(outputs.max()), int(np.add.reduceat(self.row_spans[:, 1], at).max())


class Slots(NamedTuple):
    """One snapshot's updates, a slot per batch (out_rows[b, :sizes[b, 0]] and so on), in memory
    forked workers share when they train together."""

    out_rows: np.ndarray  # (SNAPSHOT_BATCHES, outputs) rows of syn1 (may repeat)
    out_step: np.ndarray  # (SNAPSHOT_BATCHES, outputs, dim) their updates
    in_rows: np.ndarray   # (SNAPSHOT_BATCHES, inputs) rows of syn0 (may repeat)
    in_step: np.ndarray
    sizes: np.ndarray     # (SNAPSHOT_BATCHES, 2) outputs, inputs


class Scratch(NamedTuple):
    """A process's scratch for adding updates: a slot per table row (-1: none; kept across the
    snapshots, as allocating it per snapshot would cost a pass over the table each time) and the
    sums of the rows seen."""

    slot0: np.ndarray  # per row of syn0
    slot1: np.ndarray  # per row of syn1
    order: np.ndarray  # the rows seen, in order
    counts: np.ndarray
    sums: np.ndarray


@_compiled
def _dot(u, v):
    score = np.float32(0.0)
    for k in range(len(u)):
        score += u[k] * v[k]
    return score


@_compiled
def _both_steps(g, u, v, step, out):
    """step += g v (the input row's update) and out += g u (the output row's), in loops, not
    step += g * v: no temporary arrays."""
    for k in range(len(u)):
        step[k] += g * v[k]
        out[k] += g * u[k]


@_compiled
def _negatives(syn0, syn1, negs, weights, in_rows, in_step, out_step):
    """A walk's shared negatives against its rows with a pair (input rows in_rows, weights per
    row), as three matrix products (BLAS) on the gathered vectors U and V: scores S = U V^T,
    S <- weight x sigmoid(S), then in_step += S V and out_step += S^T U. The same sums as a loop
    per (row, negative), ~2x as fast: at P = 1 a walk of 80 has 80 x 50 of them, most of the
    kernel's work (2026-12-03, 2M tokens of the benchmark graph, one process: 11.4 s -> 6.6 s).
    Fewer than GEMM_MIN_SCORES scores: a loop per (row, negative)."""
    one = np.float32(1.0)
    if len(in_rows) * len(negs) < GEMM_MIN_SCORES:
        for i in range(len(in_rows)):
            u = syn0[in_rows[i]]
            for n in range(len(negs)):
                v = syn1[negs[n]]
                _both_steps(weights[i] / (one + np.exp(-_dot(u, v))), u, v, in_step[i],
                            out_step[n])
        return
    u, v = syn0[in_rows], syn1[negs]  # gathered: contiguous copies
    s = np.dot(u, v.T)
    for i in range(s.shape[0]):
        for n in range(s.shape[1]):
            s[i, n] = weights[i] / (one + np.exp(-s[i, n]))
    in_step += np.dot(s, v)
    out_step += np.dot(s.T, u)


@_compiled
def _walks_update(syn0, syn1, b, w0, w1, lr, sampled, out_rows, out_step, in_rows, in_step):
    """Walks w0..w1-1's updates: each walk's columns then its negatives are its output rows, its
    rows with a pair its input rows. Returns (outputs, inputs, loss, pairs), the loss (sum of
    -log sigmoid of the pairs' scores) and pairs only if `sampled`."""
    one = np.float32(1.0)
    outputs, inputs, loss, sampled_pairs = 0, 0, 0.0, 0
    weights = np.empty(np.max(b.row_spans[w0:w1, 1]) if w1 > w0 else 0, np.float32)
    for w in range(w0, w1):
        r0, rn = b.row_spans[w]
        c0, cn = b.col_spans[w]
        first_out = outputs
        for c in range(cn):
            out_rows[outputs] = b.c_local[c0 + c]
            out_step[outputs, :] = 0.0
            outputs += 1
        for n in range(b.negs.shape[1]):
            out_rows[outputs] = b.negs[w, n]
            out_step[outputs, :] = 0.0
            outputs += 1
        near = 0  # the walk's first column within `widest` of the row (rows go up in pos)
        first_in = inputs
        for r in range(rn):
            u = syn0[b.r_local[r0 + r]]
            p = b.r_pos[r0 + r]
            step = in_step[inputs]
            step[:] = 0.0
            pairs = 0
            while near < cn and b.c_pos[c0 + near] < p - b.widest:
                near += 1
            c = near
            while c < cn and b.c_pos[c0 + c] <= p + b.widest:
                distance = abs(b.c_pos[c0 + c] - p)
                if 0 < distance <= b.c_win[c0 + c]:
                    v = syn1[b.c_local[c0 + c]]
                    fit = one / (one + np.exp(-_dot(u, v)))
                    if sampled:
                        loss -= np.log(max(fit, 1e-12))
                    # d log sigmoid(s) / ds = 1 - sigmoid(s)
                    _both_steps((one - fit) * lr, u, v, step, out_step[first_out + c])
                    pairs += 1
                c += 1
            if pairs == 0:  # rows without a pair here have no update (and no negatives)
                continue
            if sampled:
                sampled_pairs += pairs
            # d log sigmoid(-s) / ds = -sigmoid(s); the row's negatives weigh
            # negatives x pairs / shared
            weights[inputs - first_in] = -b.neg_weight * np.float32(pairs) * lr
            in_rows[inputs] = b.r_local[r0 + r]
            inputs += 1
        _negatives(syn0, syn1, b.negs[w], weights[:inputs - first_in], in_rows[first_in:inputs],
                   in_step[first_in:inputs], out_step[first_out + cn:outputs])
    return outputs, inputs, loss, sampled_pairs


@_compiled
def _accumulate(rows, updates, worker, workers, slot, order, counts, sums, seen):
    """Sum each row's updates in the order given into sums (only the rows r with
    r mod workers = worker); slot[r] is row r's place in sums. Returns the rows seen."""
    for t in range(len(rows)):
        r = rows[t]
        if r % workers != worker:
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


@_compiled
def _compute(syn0, syn1, b, s, snapshot, worker, workers):
    """The snapshot's batches k (slot k mod SNAPSHOT_BATCHES) that are this worker's, from the
    tables as they are. Returns (loss, pairs) of its sampled batches (one in 16)."""
    loss, pairs = 0.0, 0
    first = snapshot * SNAPSHOT_BATCHES
    for k in range(first, min(first + SNAPSHOT_BATCHES, len(b.edges) - 1)):
        slot = k - first
        if slot % workers != worker:
            continue
        outputs, inputs, sampled_loss, sampled_pairs = _walks_update(
            syn0, syn1, b, b.edges[k], b.edges[k + 1], b.lrs[k], k % 16 == 0,
            s.out_rows[slot], s.out_step[slot], s.in_rows[slot], s.in_step[slot])
        s.sizes[slot, 0], s.sizes[slot, 1] = outputs, inputs
        loss += sampled_loss
        pairs += sampled_pairs
    return loss, pairs


@_compiled
def _add(table, rows, steps, sizes, batches, worker, workers, slot, x, cap):
    """Add slots 0..batches-1 (rows[b, :sizes[b]], steps likewise) to this worker's rows of the
    table, as one."""
    seen = 0
    for b in range(batches):
        seen = _accumulate(rows[b, :sizes[b]], steps[b, :sizes[b]], worker, workers, slot,
                           x.order, x.counts, x.sums, seen)
    _flush(table, cap, slot, x.order, x.counts, x.sums, seen)


@_compiled
def _apply(syn0, syn1, b, s, x, snapshot, worker, workers, cap):
    """Add the snapshot's updates (in batch order) to this worker's rows, as one: a row repeated
    c times in the snapshot takes min(1, cap / c) of its summed update."""
    batches = min(SNAPSHOT_BATCHES, len(b.edges) - 1 - snapshot * SNAPSHOT_BATCHES)
    _add(syn1, s.out_rows, s.out_step, s.sizes[:, 0], batches, worker, workers, x.slot1, x, cap)
    _add(syn0, s.in_rows, s.in_step, s.sizes[:, 1], batches, worker, workers, x.slot0, x, cap)


@_compiled
def _train_alone(syn0, syn1, b, s, x, snapshots, cap):
    """Every snapshot in one process: compute, then add (see train_bucket)."""
    loss, pairs = 0.0, 0
    for snapshot in range(snapshots):
        sampled_loss, sampled_pairs = _compute(syn0, syn1, b, s, snapshot, 0, 1)
        loss += sampled_loss
        pairs += sampled_pairs
        _apply(syn0, syn1, b, s, x, snapshot, 0, 1, cap)
    return loss, pairs


def scatter_add(table: np.ndarray, rows: np.ndarray, updates: np.ndarray,
                repeat_cap: float = np.inf) -> None:
    """table[rows] += updates where rows may repeat (hubs repeat within a batch), a row repeated
    c times getting its summed update x min(1, repeat_cap / c): what a snapshot's add does.

    The cap keeps hubs stable: a batch's updates are computed from one snapshot of the tables, so
    a row repeated c times takes a step c times as long as word2vec's sequential updates would,
    and on a small graph (77 nodes, so every node repeats in every batch) the tables diverged to
    NaN within one epoch at the default learning rate. A row's sum depends on its own updates
    only, in their order (workers adding their own rows of one update get the sums one process
    gets)."""
    x = _scratch(table, table, rows=len(rows))
    seen = _accumulate(np.asarray(rows, np.int64), np.asarray(updates, np.float32), 0, 1,
                       x.slot0, x.order, x.counts, x.sums, 0)
    _flush(table, float(repeat_cap), x.slot0, x.order, x.counts, x.sums, seen)


@_compiled
def _paired_masks(r_walk, r_pos, c_walk, c_pos, c_win, widest):
    rows_ok = np.zeros(len(r_walk), np.bool_)
    cols_ok = np.zeros(len(c_walk), np.bool_)
    pairs = 0
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
                pairs += 1
            c += 1
    return rows_ok, cols_ok, pairs


def paired(rows: Tokens, cols: Tokens) -> tuple[Tokens, Tokens, int]:
    """The rows with a pair among cols and the cols with a pair among rows: a bucket trains only
    the positions that have contexts in it (a token whose walk passes through the bucket's other
    partition only far from it costs nothing there). Row r and column c pair when they are in the
    same walk and 0 < |pos_r - pos_c| <= win_c (so with rows is cols, bucket (i, i), a token is
    not its own pair). Also returns the number of pairs."""
    if len(rows) == 0 or len(cols) == 0:
        return rows.subset(np.zeros(len(rows), bool)), cols.subset(np.zeros(len(cols), bool)), 0
    rows_ok, cols_ok, pairs = _paired_masks(rows.walk, rows.pos, cols.walk, cols.pos, cols.win,
                                            int(cols.win.max()))
    if rows_ok.all() and cols_ok.all():
        return rows, cols, int(pairs)
    return rows.subset(rows_ok), cols.subset(cols_ok), int(pairs)


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


def plan_bucket(rows: Tokens, cols: Tokens, neg_cum: np.ndarray, law: BucketLaw, limit: int
                ) -> Bucket:
    """The bucket's walks in order (those with both rows and columns: a walk without columns here
    has no pair here), in batches of about `limit` rows (whole walks), each walk's negatives
    drawn from the bucket's law, and each batch's learning rate: linear decay over the bucket's
    rows, from the batch's first row."""
    starts = np.flatnonzero(np.r_[True, rows.walk[1:] != rows.walk[:-1]]) if len(rows) \
        else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, len(rows)])
    walk = rows.walk[starts]
    col_lo = np.searchsorted(cols.walk, walk, "left")
    col_counts = np.searchsorted(cols.walk, walk, "right") - col_lo
    both = col_counts > 0
    starts, counts, walk, col_lo, col_counts = (
        a[both] for a in (starts, counts, walk, col_lo, col_counts))
    group = (np.cumsum(counts) - counts) // limit  # walks in one stretch of `limit` rows
    edges = np.flatnonzero(np.r_[True, group[1:] != group[:-1], True]) if len(walk) \
        else np.zeros(1, np.int64)
    u = uniforms(law.seed, walk[:, None], law.key, np.arange(law.shared)[None, :], SGNS_NEGATIVE)
    negs = draw(neg_cum, u)
    first_row = starts[edges[:-1]]
    lrs = (law.lr_start + (law.lr_end - law.lr_start) * (first_row / max(len(rows), 1)))
    return Bucket(rows.local, rows.pos, cols.local, cols.pos, cols.win,
                  np.stack([starts, counts], axis=1), np.stack([col_lo, col_counts], axis=1),
                  negs, edges, lrs.astype(np.float32),
                  np.float32(law.negatives / law.shared), int(cols.win.max(initial=1)))


@_compiled
def _guided_search(cum, guide, u, out):
    for t in range(len(u)):
        at = guide[int(u[t] * len(guide))]
        while at < len(cum) and cum[at] <= u[t]:
            at += 1
        out[t] = min(at, len(cum) - 1)


def draw(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Rows drawn by uniforms u from the cumulative law cum: the first row whose cum exceeds u,
    as np.searchsorted(cum, u, "right") finds it, but from a guide table (the first such row for
    each of len(cum) equal steps of u) and a short scan: a binary search per draw missed the
    cache at every step (at P = 16 the draws took as long as the pairs' training)."""
    guide = np.searchsorted(cum, np.arange(len(cum)) / len(cum), "right")
    out = np.empty(u.shape, np.int32)  # rows of one partition; half the memory of int64
    _guided_search(cum, guide, u.ravel(), out.reshape(-1))
    return out


def _slots(bucket: Bucket, dim: int, shared: bool) -> Slots:
    outputs, inputs = bucket.most()
    place = _shared if shared else (lambda array: array)
    return Slots(place(np.zeros((SNAPSHOT_BATCHES, outputs), np.int64)),
                 place(np.zeros((SNAPSHOT_BATCHES, outputs, dim), np.float32)),
                 place(np.zeros((SNAPSHOT_BATCHES, inputs), np.int64)),
                 place(np.zeros((SNAPSHOT_BATCHES, inputs, dim), np.float32)),
                 place(np.zeros((SNAPSHOT_BATCHES, 2), np.int64)))


def _scratch(syn0: np.ndarray, syn1: np.ndarray, bucket: Bucket | None = None,
             rows: int = 0) -> Scratch:
    """Scratch for adding a snapshot of the bucket's updates (or `rows` updates) to syn0 or syn1."""
    if bucket is not None:
        rows = SNAPSHOT_BATCHES * max(bucket.most())
    return Scratch(np.full(len(syn0), -1, np.int64), np.full(len(syn1), -1, np.int64),
                   np.empty(rows, np.int64), np.empty(rows, np.int64),
                   np.empty((rows, syn0.shape[1]), np.float32))


class Trained(NamedTuple):
    """What training a bucket did: the loss (sum of positive-pair losses) and the pairs of a
    sample of the batches (for progress lines), every pair of the bucket, and the row visits:
    a gather and a scatter of one table row for each of its walks' rows, columns and negatives
    (what the tables' layout in memory makes cheap or dear)."""

    loss: float
    sampled_pairs: int
    pairs: int
    row_visits: int


def train_bucket(syn0: np.ndarray, syn1: np.ndarray, rows: Tokens, cols: Tokens,
                 neg_cum: np.ndarray, law: BucketLaw, workers: int = 1) -> Trained:
    """Train input table syn0 (partition i) against output table syn1 (partition j) in place on
    the pairs of rows (partition i's tokens) and cols (partition j's tokens: centres, with their
    reduced windows).

    Batches go in snapshots of SNAPSHOT_BATCHES: each batch of a snapshot is computed from the
    tables as the snapshot found them, then the snapshot's updates are added as one. `workers`
    processes share the work (batch b of a snapshot is computed by worker b mod workers; then
    worker w adds the snapshot's updates of the rows r with r mod workers = w), so the embeddings
    do not depend on it."""
    rows, cols, pairs = paired(rows, cols)
    bucket = plan_bucket(rows, cols, neg_cum, law, batch_rows(len(syn0), len(syn1), law))
    if bucket.batches == 0:
        return Trained(0.0, 0, pairs, 0)
    visits = 2 * int(bucket.row_spans[:, 1].sum() + bucket.col_spans[:, 1].sum()
                     + bucket.negs.size)
    workers = max(1, min(workers, SNAPSHOT_BATCHES))
    if workers == 1 or bucket.batches <= SNAPSHOT_BATCHES:  # one snapshot: not worth a process
        slots = _slots(bucket, syn0.shape[1], shared=False)
        loss, sampled = _train_alone(syn0, syn1, bucket, slots, _scratch(syn0, syn1, bucket),
                                     bucket.snapshots, float(law.repeat_cap))
    else:
        loss, sampled = _train_forked(syn0, syn1, bucket, float(law.repeat_cap), workers)
    return Trained(float(loss), int(sampled), pairs, visits)


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
    slots: Slots


def _train_snapshots(syn0, syn1, bucket: Bucket, cap: float, worker: int, sync: _Sync
                     ) -> tuple[float, int]:
    """Worker `worker`'s share of every snapshot, in step with the others."""
    scratch = _scratch(syn0, syn1, bucket)
    loss, pairs = 0.0, 0
    for snapshot in range(bucket.snapshots):
        sampled_loss, sampled_pairs = _compute(syn0, syn1, bucket, sync.slots, snapshot, worker,
                                               sync.workers)
        loss, pairs = loss + sampled_loss, pairs + sampled_pairs
        sync.barrier.wait(worker)  # every batch of the snapshot computed from the same tables
        _apply(syn0, syn1, bucket, sync.slots, scratch, snapshot, worker, sync.workers, cap)
        sync.barrier.wait(worker)  # the snapshot added everywhere before the next is computed
    return loss, pairs


def _shared(array: np.ndarray) -> np.ndarray:
    """A copy of `array` in memory that forked processes share (anonymous MAP_SHARED)."""
    buffer = mmap.mmap(-1, max(array.nbytes, 1))
    shared = np.frombuffer(buffer, array.dtype, array.size).reshape(array.shape)
    shared[...] = array
    return shared


def _train_forked(syn0, syn1, bucket: Bucket, cap: float, workers: int) -> tuple[float, int]:
    """`workers` - 1 forked processes beside this one, on tables in shared memory. Whoever fails
    breaks the barrier, so the others stop too; a worker's error is raised here."""
    context = multiprocessing.get_context("fork")
    sync = _Sync(workers, _Barrier(context, workers),
                 _slots(bucket, syn0.shape[1], shared=True))
    tables = _shared(syn0), _shared(syn1)
    children = []
    for w in range(1, workers):
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_worker_main, daemon=True,
                                args=(tables, bucket, cap, w, sync, send))
        child.start()
        send.close()
        children.append((child, receive))
    loss, pairs = 0.0, 0
    try:
        loss, pairs = _train_snapshots(*tables, bucket, cap, 0, sync)
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


def _worker_main(tables, bucket, cap, worker, sync, send) -> None:
    try:
        send.send(_train_snapshots(*tables, bucket, cap, worker, sync))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises
        sync.barrier.abort()
        send.send(f"{type(error).__name__}: {error}")
