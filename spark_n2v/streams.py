"""Every random stream and hash salt, in one place.

Each draw comes from the seed and the coordinates of what it decides, never from task order, so
the same seed gives the same result whatever the partitioning, the executors or the retries.
Three kinds of draws:
- **numpy streams** (walk kernels, skip-gram trainer): `uniforms(seed, a, b, c, stream)` hashes
  the seed and three integer coordinates with splitmix64 (counter-based: no state to carry);
- **Spark column hashes** (splits, samples, layouts): `column_hash(salt, *columns, seed=...)`,
  xxhash64 of the columns, the seed (when the draw depends on it) and a salt;
- **one numpy Generator**: the LSH hyperplanes, `hyperplane_generator(seed)`.

Each stream number and each salt below stands for one draw; tests/test_streams.py checks that no
two are equal.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F

# --- numpy streams: uniforms(seed, a, b, c, stream) -----------------------------------------------
# walk kernels, coordinates (walk_id, step, attempt)
WALK_RETURN_FOLD = 0   # outlier folding: the candidate falls in the return edge's appendix
WALK_CANDIDATE = 1     # the candidate, from the current node's static law
WALK_ACCEPT = 2        # its acceptance test: alpha(t, x) against the envelope
# skip-gram trainer
SGNS_WINDOW = 11       # (walk_id, position, 0): a centre's reduced window
SGNS_NEGATIVE = 12     # (walk_id, bucket key, draw): a walk's shared negatives in one bucket
SGNS_INIT = 13         # (node rank, dimension, 0): the initial input vectors
SGNS_CHUNK = 14        # (walk_id, 0, 0): the chunk of the epoch a walk trains in
SGNS_LAYOUT_TIE = 15   # (round, 0, 0): which labels a round of the layout's propagation prefers

NUMPY_STREAMS = {"WALK_RETURN_FOLD": WALK_RETURN_FOLD, "WALK_CANDIDATE": WALK_CANDIDATE,
                 "WALK_ACCEPT": WALK_ACCEPT, "SGNS_WINDOW": SGNS_WINDOW,
                 "SGNS_NEGATIVE": SGNS_NEGATIVE, "SGNS_INIT": SGNS_INIT, "SGNS_CHUNK": SGNS_CHUNK,
                 "SGNS_LAYOUT_TIE": SGNS_LAYOUT_TIE}

# --- Spark column hashes: column_hash(salt, *columns, seed=...) -----------------------------------
SIMILAR_GROUP = 1          # exact search: a candidate's group (a layout: not seeded)
SIMILAR_QUERY = 2          # exact search: a query's block (not seeded)
SIMILAR_PIECE = 3          # approximate search: a node's piece of an oversized bucket (not seeded)
LINKPRED_KEEP = 4          # link prediction: each node keeps its incident edge of smallest hash
LINKPRED_HOLD_OUT = 5      # link prediction: which of the other edges are held out
CLASSIFY_SPLIT = 6         # classification: a node's place in its class's train/test order
SIMILAR_RECALL = 7         # approximate search: the queries checked against exact
PLOT_SAMPLE = 8            # plot: the nodes drawn
LINKPRED_TRAIN_EDGES = 9   # link prediction: the kept edges that train the classifier
TRAIN_TOKEN_BUCKET = 30    # sgns token split: a node id's bucket of token files (a layout: not seeded)
TRAIN_LAYOUT_SEED = 31     # sgns layout: the nodes that start label propagation with a label
TRAIN_LAYOUT_TIE = 32      # sgns layout: ties between a hub's neighbours of equal weight
TRAIN_LAYOUT_ORDER = 33    # sgns layout: the order of the communities
NON_EDGE_ATTEMPTS = 3      # link prediction draws non-edges in up to 3 rounds, each its own salts:
LINKPRED_NON_EDGE_U = 10   # 10, 11, 12: the first end of each draw
LINKPRED_NON_EDGE_V = 20   # 20, 21, 22: the second end

SALTS = {"SIMILAR_GROUP": SIMILAR_GROUP, "SIMILAR_QUERY": SIMILAR_QUERY,
         "SIMILAR_PIECE": SIMILAR_PIECE, "LINKPRED_KEEP": LINKPRED_KEEP,
         "LINKPRED_HOLD_OUT": LINKPRED_HOLD_OUT, "CLASSIFY_SPLIT": CLASSIFY_SPLIT,
         "SIMILAR_RECALL": SIMILAR_RECALL, "PLOT_SAMPLE": PLOT_SAMPLE,
         "LINKPRED_TRAIN_EDGES": LINKPRED_TRAIN_EDGES, "TRAIN_TOKEN_BUCKET": TRAIN_TOKEN_BUCKET,
         "TRAIN_LAYOUT_SEED": TRAIN_LAYOUT_SEED, "TRAIN_LAYOUT_TIE": TRAIN_LAYOUT_TIE,
         "TRAIN_LAYOUT_ORDER": TRAIN_LAYOUT_ORDER,
         "LINKPRED_NON_EDGE_U": LINKPRED_NON_EDGE_U, "LINKPRED_NON_EDGE_V": LINKPRED_NON_EDGE_V,
         **{f"LINKPRED_NON_EDGE_{end}+{k}": base + k for end, base in
            (("U", LINKPRED_NON_EDGE_U), ("V", LINKPRED_NON_EDGE_V))
            for k in range(1, NON_EDGE_ATTEMPTS)}}


# --- numpy: splitmix64 of the coordinates ---------------------------------------------------

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 with good avalanche."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def attempt_keys(seed: int, a, b, c) -> np.ndarray:
    """The hash of a draw's coordinates (broadcasting numpy arrays; the walk's are walk_id, step,
    attempt): one key, from which each stream's uniform is one more mix (so a kernel that needs
    several streams of the same coordinates hashes them once)."""
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(seed) + _GAMMA + np.asarray(a, dtype=np.uint64))
        return _mix(h + _GAMMA + (np.asarray(b, dtype=np.uint64) << np.uint64(32))
                    + np.asarray(c, dtype=np.uint64))


def stream_uniforms(keys: np.ndarray, stream: int) -> np.ndarray:
    """Uniform doubles in [0, 1) of one stream, from attempt_keys."""
    with np.errstate(over="ignore"):
        h = _mix(keys + _GAMMA * np.uint64(stream + 1))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def uniforms(seed: int, a, b, c, stream: int) -> np.ndarray:
    """Uniform doubles in [0, 1) from the coordinates (broadcasting numpy arrays)."""
    return stream_uniforms(attempt_keys(seed, a, b, c), stream)


# --- Spark ----------------------------------------------------------------------------------

def column_hash(salt: int, *columns: str | Column, seed: int | None = None) -> Column:
    """xxhash64 of the columns, the seed (for seeded draws) and the salt: a long."""
    extra = [] if seed is None else [F.lit(seed)]
    return F.xxhash64(*columns, *extra, F.lit(salt))


def id_hash(column: str | Column) -> Column:
    """A node id (of any type) as a long: an identity, not a draw (unseeded, unsalted)."""
    return F.xxhash64(column)


def column_uniform(salt: int, *columns: str | Column, seed: int) -> Column:
    """A uniform double in [0, 1) from column_hash (30 bits)."""
    return F.pmod(column_hash(salt, *columns, seed=seed), F.lit(1 << 30)) / float(1 << 30)


def hyperplane_generator(seed: int) -> np.random.Generator:
    """The one numpy Generator: the LSH hyperplanes, drawn on the driver, seeded by the seed."""
    return np.random.default_rng(seed)
