"""The walk step as vectorised numpy kernels over Arrow batches.

One step of node2vec's second-order walk, done by rejection sampling (KnightKing): a walker that came
from t and stands at v draws a candidate x from v's static law w(v, x) and accepts it with probability
alpha(t, x) / envelope. Most decisions need only v's own adjacency; the rest (is t -> x an edge?) are
answered in a second phase that meets one copy of t's adjacency. Hence two kernels:

- `propose` (phase A, against the adjacency of `cur`): draws K candidates per walker and decides
  what it can locally; emits the undecided ones as queries.
- `resolve` (phase B, against the adjacency of `prev`): answers the queries and picks each walker's
  first accepted candidate.

`walk_paths` runs both to the end of every walk on the whole graph (the replicated engine);
`propose_batch` and `resolve_batch` run them on Arrow batches against shards (the sharded engine).

Every random number is a hash of (seed, walk_id, step, attempt, stream) (streams.py): the walks do
not depend on partitioning, batch boundaries, task order or retries. Attempts are visited in order and the first
accepted one wins, so splitting the work into phases and rounds changes nothing in the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_n2v import columns as C
from spark_n2v.streams import (WALK_ACCEPT, WALK_CANDIDATE, WALK_RETURN_FOLD, attempt_keys,
                               stream_uniforms, uniforms)


def segment_search(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                   targets: np.ndarray, side: str = "left") -> np.ndarray:
    """np.searchsorted within each segment values[starts[i] : starts[i] + lengths[i]].

    Returns absolute positions (arguments broadcast together). A vectorised bisection that keeps
    only the still-open searches at each pass, so a hub's long list costs its own searches a few
    more passes and the others nothing.
    """
    goes_right = np.less if side == "left" else np.less_equal
    starts, lengths, targets = np.broadcast_arrays(starts, lengths, targets)
    shape = targets.shape
    lo = starts.astype(np.int64).ravel()  # a copy: the bounds are updated in place
    hi = lo + lengths.ravel()
    targets = targets.ravel()
    todo = np.flatnonzero(lo < hi)
    while len(todo):
        low, high = lo[todo], hi[todo]
        mid = (low + high) >> 1
        right = goes_right(values[mid], targets[todo])
        low = np.where(right, mid + 1, low)
        high = np.where(right, high, mid)
        lo[todo], hi[todo] = low, high
        todo = todo[low < high]
    return lo.reshape(shape)


@dataclass(frozen=True)
class StepLaw:
    """The constants of one walk: alpha(t, x) is 1/p for x = t, 1 if t -> x, 1/q otherwise."""

    return_p: float
    inout_q: float
    seed: int
    symmetric: bool = False  # every arc has its reverse (undirected graphs): v -> t is an edge

    @property
    def alpha_return(self) -> float:
        return 1.0 / self.return_p

    @property
    def alpha_far(self) -> float:
        return 1.0 / self.inout_q

    @property
    def envelope(self) -> float:
        """Largest alpha of a non-return candidate; the return edge is folded out when above it."""
        return max(1.0, self.alpha_far)

    @property
    def lower(self) -> float:
        """Smallest alpha of a non-return candidate: below it a candidate is accepted untested."""
        return min(1.0, self.alpha_far)

    @property
    def accepts_edges(self) -> bool:
        """Which answer accepts a query: a query's scaled uniform lies in [lower, envelope), where
        alpha is 1 for an edge t -> x and 1/q otherwise, so exactly one of the two accepts it: the
        edge when q > 1, the non-edge when q < 1. A query is then only its candidate x."""
        return self.alpha_far < 1.0

    @property
    def needs_edge_test(self) -> bool:
        """With q = 1 every non-return candidate has alpha 1: phase B is never needed."""
        return self.inout_q != 1.0

    @property
    def attempts(self) -> int:
        """Candidates drawn per walker per round: enough that a second round is rare."""
        ratio = self.envelope / min(self.lower, self.alpha_return)
        return int(min(32, max(4, np.ceil(2 * ratio))))


@dataclass
class Adjacency:
    """Flat view of the adjacency lists in one batch: row r's neighbours are
    nbrs[starts[r] : starts[r] + degrees[r]] (sorted); cum likewise at cum_starts, or None."""

    nbrs: np.ndarray
    starts: np.ndarray
    degrees: np.ndarray
    cum: np.ndarray | None
    cum_starts: np.ndarray | None

    def sample(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Neighbour drawn by the static law of each row (u uniform in [0, 1), any shape)."""
        deg = self.degrees[rows]
        if self.cum is None:
            rel = np.minimum((u * deg).astype(np.int64), deg - 1)
        else:
            pos = segment_search(self.cum, self.cum_starts[rows], deg, u, side="right")
            rel = np.minimum(pos - self.cum_starts[rows], deg - 1)
        return self.nbrs[self.starts[rows] + rel]

    def find(self, rows: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(is target a neighbour of row, its position within the row)."""
        deg = self.degrees[rows]
        pos = segment_search(self.nbrs, self.starts[rows], deg, targets)
        rel = pos - self.starts[rows]
        found = (rel < deg) & (self.nbrs[np.minimum(pos, len(self.nbrs) - 1)] == targets)
        return found & (deg > 0), rel

    def weight(self, rows: np.ndarray, rel: np.ndarray) -> np.ndarray:
        """Normalised weight of the rel-th neighbour of each row."""
        if self.cum is None:
            return 1.0 / self.degrees[rows]
        at = self.cum_starts[rows] + rel
        before = np.where(rel > 0, self.cum[np.maximum(at - 1, 0)], 0.0)
        return self.cum[at] - before


def propose(law: StepLaw, adj: Adjacency, rows, walk_id, prev, step, attempt, done,
            attempts: int | None = None):
    """Phase A on numpy arrays (one entry per walker; rows = its adjacency row, that of `cur`).

    `attempts` candidates are drawn per walker (default law.attempts). Any number gives the same
    walks: attempt a's candidate depends on a alone, and the first accepted attempt wins.

    Returns (next, done, attempt, query_counts, query_x, fallback).
    """
    n = len(walk_id)
    nxt = np.full(n, -1, dtype=np.int64)
    fallback = np.full(n, -1, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    attempt = attempt.copy()
    dead_end = ~done & (adj.degrees[rows] == 0)
    done = done | dead_end
    active = ~done

    first = np.flatnonzero(active & (prev < 0))
    if len(first):  # the first step follows the static law: no rejection
        u = uniforms(law.seed, walk_id[first], step[first], attempt[first], WALK_CANDIDATE)
        nxt[first] = adj.sample(rows[first], u)

    later = np.flatnonzero(active & (prev >= 0))
    if not len(later):
        return nxt, done, attempt, counts, np.empty(0, np.int64), fallback
    k = attempts or law.attempts
    r, t = rows[later], prev[later]
    att = attempt[later][:, None] + np.arange(k)[None, :]
    wid, stp = walk_id[later][:, None], step[later][:, None]
    keys = attempt_keys(law.seed, wid, stp, att)
    # rows broadcast over the attempts
    x = adj.sample(r[:, None], stream_uniforms(keys, WALK_CANDIDATE))
    scaled = stream_uniforms(keys, WALK_ACCEPT) * law.envelope
    is_return = x == t[:, None]
    accept = np.where(is_return, scaled < min(law.alpha_return, law.envelope), scaled < law.lower)
    if law.alpha_return > law.envelope:
        # Outlier folding: the return edge's mass above the envelope is a separate appendix, entered
        # with probability extra / (envelope + extra), so the envelope stays tight for the rest.
        if law.symmetric and adj.cum is None:  # v -> t exists and weighs 1 / deg(v): no search
            extra = 1.0 / adj.degrees[r]
        else:
            found, rel = adj.find(r, t)
            extra = np.where(found, adj.weight(r, np.where(found, rel, 0)), 0.0)
        extra *= law.alpha_return - law.envelope
        fold = extra / (law.envelope + extra)
        appendix = stream_uniforms(keys, WALK_RETURN_FOLD) < fold[:, None]
        x = np.where(appendix, t[:, None], x)
        accept |= appendix
        is_return |= appendix
    # A query when the answer to "t -> x?" decides (see accepts_edges); at or above the envelope
    # (only by rounding) neither answer accepts, so the candidate is rejected here.
    query = ~accept & ~is_return & (scaled < law.envelope) if law.needs_edge_test \
        else np.zeros_like(accept)

    has_accept = accept.any(axis=1)
    first_accept = np.where(has_accept, accept.argmax(axis=1), k)
    query &= np.arange(k)[None, :] < first_accept[:, None]
    q_counts = query.sum(axis=1)
    accepted_x = x[np.arange(len(later)), np.minimum(first_accept, k - 1)]
    resolved = q_counts == 0
    nxt[later] = np.where(resolved & has_accept, accepted_x, -1)
    attempt[later] = np.where(resolved & ~has_accept, attempt[later] + k, attempt[later])
    fallback[later] = np.where(~resolved & has_accept, accepted_x, -1)
    counts[later] = q_counts
    return nxt, done, attempt, counts, x[query], fallback


def resolve(law: StepLaw, adj: Adjacency, rows, nxt, attempt, counts, query_x, fallback,
            attempts: int | None = None, whole_graph: bool = False):
    """Phase B on numpy arrays (rows = each walker's adjacency row, that of `prev`).

    Returns (next, attempt): the first accepted query, else the fallback, else another round.
    `attempts` must be the number propose drew. With `whole_graph` (row = node, the replicated engine)
    and a symmetric graph, "prev -> x?" is asked of the shorter list: x -> prev is the same edge.
    """
    nxt, attempt = nxt.copy(), attempt.copy()
    pending = np.flatnonzero(counts > 0)
    if not len(pending):
        return nxt, attempt
    owner = np.repeat(np.arange(len(counts)), counts)
    src, dst = rows[owner], query_x
    if whole_graph and law.symmetric:
        swap = adj.degrees[dst] < adj.degrees[src]
        src, dst = np.where(swap, dst, src), np.where(swap, src, dst)
    member, _ = adj.find(src, dst)
    accepted = member if law.accepts_edges else ~member
    winners, first = np.unique(owner[accepted], return_index=True)
    chosen = np.full(len(counts), -1, dtype=np.int64)
    chosen[winners] = query_x[np.flatnonzero(accepted)[first]]
    chosen[pending] = np.where(chosen[pending] >= 0, chosen[pending], fallback[pending])
    nxt[pending] = chosen[pending]
    retry = pending[chosen[pending] < 0]
    attempt[retry] += attempts or law.attempts
    return nxt, attempt


# Candidates per round in the replicated engine: a round there costs a loop pass, not a Spark job, so one
# candidate per round and another pass for the rejected is cheapest (measured on 2M edges, steps/s
# per core for 1 / 2 / 4 candidates: p=q=1 8.0M / 4.3M / 3.3M; p=4 q=0.25 3.1M / 1.8M / 1.3M;
# p=0.5 q=2 and p=0.25 q=4 about equal). The walks do not depend on it.
LOCAL_ATTEMPTS = 1


def walk_paths(law: StepLaw, adj: Adjacency, walk_id: np.ndarray, start: np.ndarray,
               walk_length: int, attempts: int = LOCAL_ATTEMPTS) -> tuple[np.ndarray, np.ndarray]:
    """Walk every walker to its end on a whole-graph adjacency (row r = node r): the replicated engine.

    The same propose/resolve rounds as the sharded engine's step, on the same random stream, so the walks
    are the same. Returns (paths: n x walk_length node indices, lengths: nodes per walk).
    """
    n = len(walk_id)
    paths = np.empty((n, walk_length), dtype=np.int64)
    paths[:, 0] = start
    lengths = np.ones(n, dtype=np.int64)
    cur, prev = start.astype(np.int64), np.full(n, -1, dtype=np.int64)
    attempt = np.zeros(n, dtype=np.int64)
    live = np.arange(n) if walk_length > 1 else np.empty(0, dtype=np.int64)
    while len(live):
        nxt, dead, tried, counts, qx, fallback = propose(
            law, adj, cur[live], walk_id[live], prev[live], lengths[live] - 1, attempt[live],
            np.zeros(len(live), dtype=bool), attempts)
        if law.needs_edge_test:
            nxt, tried = resolve(law, adj, prev[live], nxt, tried, counts, qx, fallback,
                                 attempts, whole_graph=True)
        moved = nxt >= 0
        went = live[moved]
        paths[went, lengths[went]] = nxt[moved]
        lengths[went] += 1
        prev[went], cur[went], attempt[went] = cur[went], nxt[moved], 0
        attempt[live[~moved]] = tried[~moved]
        live = live[~dead & (lengths[live] < walk_length)]
    return paths, lengths


def propose_until_placed(law: StepLaw, adj: Adjacency, rows, walk_id, prev, step,
                         attempts: int | None = None):
    """Phase A for the sharded engine: draw rounds of candidates until every walker either moved,
    ended (no out-edges) or holds a locally accepted fallback behind its queries, so that phase B
    always places it: every live walker moves once per step, and no step needs another job.

    The same attempts in the same order as `walk_paths` draws, so the walks are the same. Returns
    (next, done, counts, query_x, fallback), queries grouped by walker in attempt order.
    """
    n = len(walk_id)
    k = attempts or law.attempts
    nxt = np.full(n, -1, dtype=np.int64)
    fallback = np.full(n, -1, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    attempt = np.zeros(n, dtype=np.int64)
    queried = np.zeros(n, dtype=bool)
    owners, xs = [], []
    todo = np.arange(n)
    while len(todo):
        got, ended, _, counts, qx, fell = propose(
            law, adj, rows[todo], walk_id[todo], prev[todo], step[todo], attempt[todo],
            np.zeros(len(todo), dtype=bool), k)
        asked = queried[todo]  # queries from earlier rounds come first: an accept is a fallback
        fell = np.where(asked & (got >= 0), got, fell)
        got = np.where(asked, -1, got)
        nxt[todo], done[todo], fallback[todo] = got, ended, fell
        queried[todo] |= counts > 0
        owners.append(np.repeat(todo, counts))
        xs.append(qx)
        open_ = ~ended & (got < 0) & (fell < 0)
        attempt[todo] += k
        todo = todo[open_]
    owner = np.concatenate(owners)
    order = np.argsort(owner, kind="stable")  # grouped by walker, rounds kept in order
    counts = np.bincount(owner, minlength=n)
    return nxt, done, counts, np.concatenate(xs)[order], fallback


# --- Arrow glue (the sharded engine's step) ------------------------------------------------------

# A step's walkers come as (walk_id, prev, cur): `cur` stands at index `step` of its walk (the same
# for all of them: every live walker moves once per step), coming from `prev`. Phase A adds its
# choice or its queries, and `visited`, the id of `cur` (decoded where cur's shard is). Node
# indices keep the type `cur` came in (the sharded engine packs them in 4 bytes while they fit).
PROPOSAL_COLUMNS = [C.WALK_ID, C.PREV, C.CUR, C.NEXT, C.QUERY_X, C.FALLBACK, C.VISITED]


def _np(batch: pa.RecordBatch, name: str, dtype=np.int64) -> np.ndarray:
    return batch.column(name).to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _lists(counts: np.ndarray, values: np.ndarray, type_: pa.DataType) -> pa.ListArray:
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, type_))


def groups(keys: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(key, positions holding it) for each distinct key, in key order."""
    if len(keys) and -2**15 <= keys.min() and keys.max() < 2**15:
        keys = keys.astype(np.int16)  # numpy's stable sort of 16-bit keys is a radix sort: 8x
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    for part in np.split(order, bounds):
        if len(part):
            yield int(keys[part[0]]), part


def by_shard(nodes: np.ndarray, shards: int) -> Iterator[tuple[int, np.ndarray]]:
    """(shard, positions of the nodes it owns) for each shard present."""
    return groups(nodes % shards)


def propose_batch(law: StepLaw, shards: int, open_shard, step: int, batch: pa.RecordBatch
                  ) -> pa.RecordBatch:
    """Phase A of one Arrow batch of walkers (walk_id, prev, cur) at index `step` of their walks:
    PROPOSAL_COLUMNS. open_shard(k) -> (Csr, Adjacency) of shard k."""
    walk_id, cur, prev = _np(batch, C.WALK_ID), _np(batch, C.CUR), _np(batch, C.PREV)
    node_type = batch.schema.field(C.CUR).type
    n = len(walk_id)
    step = np.full(n, step, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    fallback = np.full(n, -1, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    qx_parts, q_owner = [], []
    for k, at in by_shard(cur, shards):
        _, adj = open_shard(k)
        got, _, c, qx, fell = propose_until_placed(law, adj, cur[at] // shards, walk_id[at],
                                                   prev[at], step[at])
        nxt[at], fallback[at], counts[at] = got, fell, c
        qx_parts.append(qx)
        q_owner.append(np.repeat(at, c))
    order = np.argsort(np.concatenate(q_owner), kind="stable") if q_owner else np.empty(0, int)
    qx = np.concatenate(qx_parts)[order] if qx_parts else np.empty(0, np.int64)
    return pa.RecordBatch.from_arrays(
        [batch.column(C.WALK_ID), batch.column(C.PREV), batch.column(C.CUR),
         pa.array(nxt, node_type), _lists(counts, qx, node_type), pa.array(fallback, node_type),
         decode(cur, shards, open_shard)],
        names=PROPOSAL_COLUMNS)


def decode(nodes: np.ndarray, shards: int, open_shard) -> pa.Array:
    """The ids of nodes (any order), each read from its own shard's ids."""
    rows = np.empty(len(nodes), dtype=np.int64)
    arrays, held = [], 0
    for k, at in by_shard(nodes, shards):
        arrays.append(open_shard(k)[0].ids.take(pa.array(nodes[at] // shards)))
        rows[at] = held + np.arange(len(at))
        held += len(at)
    return pa.concat_arrays(arrays).take(pa.array(rows))


def resolve_batch(law: StepLaw, shards: int, open_shard, batch: pa.RecordBatch) -> np.ndarray:
    """Phase B of one Arrow batch of proposals: each walker's next node (queries asked of the
    shard of `prev`; walkers without queries keep theirs)."""
    nxt = _np(batch, C.NEXT).copy()
    query_x = batch.column(C.QUERY_X)
    counts = pc.fill_null(pc.list_value_length(query_x), 0).to_numpy().astype(np.int64)
    pending = np.flatnonzero(counts > 0)
    if not len(pending):
        return nxt
    prev = _np(batch, C.PREV)
    offsets = query_x.offsets.to_numpy().astype(np.int64)
    starts = offsets[:-1] - offsets[0]  # a sliced list array's offsets need not start at 0
    flat_x = pc.list_flatten(query_x).to_numpy().astype(np.int64)
    fallback = _np(batch, C.FALLBACK)
    for k, at in by_shard(prev[pending], shards):
        walkers = pending[at]
        take = _ranges(starts[walkers], counts[walkers])
        _, adj = open_shard(k)
        moved, _ = resolve(law, adj, prev[walkers] // shards, nxt[walkers],
                           np.zeros(len(walkers), np.int64), counts[walkers], flat_x[take],
                           fallback[walkers])
        nxt[walkers] = moved
    return nxt


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenated ranges [starts[i], starts[i] + counts[i])."""
    total = int(counts.sum())
    group = np.repeat(np.arange(len(counts)), counts)
    return starts[group] + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
