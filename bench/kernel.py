"""The sgns kernel alone, without Spark: every bucket of one epoch of a walks table at P, in this
process, timed by phase (pairing, planning, training). For profiling the kernel; the trainer's
figures beside gensim come from bench/train.py.

Nodes go to partitions as the trainer deals them (round-robin by frequency rank); the learning
rate, negatives and windows are the trainer's defaults.

    .venv/bin/python bench/kernel.py out/bench/train/hard-20000-200000/walks --fraction 0.125 \\
        --partitions 8 --dim 256
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow.parquet as pq

from spark_n2v.train import sgns_kernel as kernel
from spark_n2v.train.sgns import Plan


def tokens_of(walks: str, fraction: float) -> tuple[np.ndarray, ...]:
    """(walk, pos, rank by frequency) of every token of the first `fraction` of the walks, and
    the counts in rank order."""
    table = pq.read_table(walks).sort_by("walk_id")
    n = max(1, int(len(table) * fraction))
    lists = table.column("walk").slice(0, n).combine_chunks()
    lengths = np.asarray(lists.value_lengths().to_numpy(), np.int64)
    walk = np.repeat(np.asarray(table.column("walk_id").to_numpy()[:n], np.int64), lengths)
    pos = np.arange(len(walk)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    _, inverse, counts = np.unique(np.asarray(lists.flatten().to_numpy()), return_inverse=True,
                                   return_counts=True)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return walk, pos, rank[inverse], counts[order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("walks", help="a walks table (walk_id, walk)")
    parser.add_argument("--fraction", type=float, default=0.125, help="of the walks, first ones")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--workers", type=int, default=1, help="processes per bucket")
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--negatives", type=int, default=5)
    args = parser.parse_args()
    P = args.partitions
    walk, pos, rank, counts = tokens_of(args.walks, args.fraction)
    win = kernel.reduced_windows(1, walk, pos, args.window)
    part = rank % P
    tokens = [kernel.Tokens.sorted(walk[part == i], pos[part == i], rank[part == i] // P,
                                   win[part == i]) for i in range(P)]
    laws = [kernel.negative_table(counts[i::P]) for i in range(P)]
    syn0 = [kernel.initial_vectors(1, np.arange(i, len(counts), P), args.dim) for i in range(P)]
    syn1 = [np.zeros_like(table) for table in syn0]
    mass = np.asarray(counts, np.float64) ** 0.75
    # the trainer's plan of one epoch in one chunk: its learning rates and shared negatives
    plan = Plan(work="", partitions=P, dim=args.dim, negatives=args.negatives,
                learning_rate=0.025, epochs=1, chunks=1, seed=1,
                sizes=tuple(len(table) for table in syn0),
                shares=tuple(float(mass[i::P].sum() / mass.sum()) for i in range(P)))
    # compile (or load the compiled kernel) outside the timing
    first = tokens[0].subset(tokens[0].walk <= tokens[0].walk[min(1000, len(tokens[0]) - 1)])
    kernel.train_bucket(syn0[0].copy(), syn1[0].copy(), first, first, laws[0],
                        kernel.BucketLaw(0.025, 0.025, args.negatives, plan.shared(0), 1, 0))
    phases = np.zeros(3)
    for k in range(P):
        for i in range(P):
            j = (i + k) % P
            law = kernel.BucketLaw(plan.lr(k), plan.lr(k + 1), args.negatives, plan.shared(j),
                                   plan.seed, key=k * P * P + i * P + j)
            t0 = time.perf_counter()
            rows, cols, _ = kernel.paired(tokens[i], tokens[j])
            t1 = time.perf_counter()
            kernel.plan_bucket(rows, cols, laws[j], law,
                               kernel.batch_rows(len(syn0[i]), len(syn1[j]), law))
            t2 = time.perf_counter()
            kernel.train_bucket(syn0[i], syn1[j], tokens[i], tokens[j], laws[j], law,
                                args.workers)
            t3 = time.perf_counter()
            # train_bucket pairs and plans again: its training is the rest
            phases += (t1 - t0, t2 - t1, (t3 - t2) - (t2 - t0))
    total = phases.sum()
    print(f"P = {P}, d = {args.dim}, {args.workers} worker(s), {len(walk):,} tokens: "
          f"pairing {phases[0]:.2f} s, planning {phases[1]:.2f} s, training {phases[2]:.2f} s; "
          f"{len(walk) / total / 1e3:.0f}k tokens/s")


if __name__ == "__main__":
    main()
