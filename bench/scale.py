"""The trainer's scale benchmark: a model past MLlib Word2Vec's ceiling (vocabulary x dimension
>= 2^31) trained on this machine, with the peak memory of every training task.

The walks are synthetic and written directly (not timed; the walk stage has its own benchmark): one
walk per node, of `--length` nodes, on a planted partition of blocks of 1,000 consecutive ids, where
each step stays in the current block with probability `--inside` and otherwise jumps to a uniform
node. Then `spark-n2v train --trainer sgns` runs as one timed process (peak memory of its process
tree), its log gives the peak resident memory of the Python tasks, and the embeddings of a sample of
blocks are scored by logistic regression (bench/peers/score.py) against their block labels.

    make bench-scale
    .venv/bin/python bench/scale.py --nodes 17000000 --dim 128 --partitions 8
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from run import OURS, ROOT, measure, write_report
from train import _score

BLOCK = 1000
WALKS_PER_FILE = 1 << 20
MLLIB_CEILING = 1 << 31  # MLlib Word2Vec requires vocabulary x dimension < 2^31


def write_walks(folder: str, nodes: int, length: int, inside: float, seed: int) -> int:
    """One walk per node, `length` nodes long, as Parquet files of (walk_id, walk). Returns tokens."""
    marker = os.path.join(folder, "_SUCCESS")
    if os.path.exists(marker):
        return nodes * length
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for first in range(0, nodes, WALKS_PER_FILE):
        start = np.arange(first, min(first + WALKS_PER_FILE, nodes), dtype=np.int64)
        steps = [start]
        for _ in range(length - 1):
            here = steps[-1]
            stay = rng.random(len(here)) < inside
            block_start = here // BLOCK * BLOCK
            block_size = np.minimum(BLOCK, nodes - block_start)
            within = block_start + (rng.random(len(here)) * block_size).astype(np.int64)
            jump = rng.integers(0, nodes, len(here))
            steps.append(np.where(stay, within, jump))
        values = np.stack(steps, axis=1).ravel()
        offsets = np.arange(0, len(values) + 1, length, dtype=np.int32)
        table = pa.table({"walk_id": start,
                          "walk": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))})
        pq.write_table(table, os.path.join(folder, f"part-{first // WALKS_PER_FILE:05d}.parquet"))
    open(marker, "w").close()
    return nodes * length


def sample_scores(embeddings: str, work: str, nodes: int, blocks: int, seed: int) -> dict:
    """Macro-F1 of block labels on the embeddings of `blocks` random blocks (streamed, filtered)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(nodes // BLOCK, size=blocks, replace=False)
    ids = (chosen[:, None] * BLOCK + np.arange(BLOCK)[None, :]).ravel()
    table = ds.dataset(embeddings, format="parquet").to_table(filter=ds.field("id").isin(ids))
    got = table.column("id").to_numpy()
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    labels_npz, vectors_npz = os.path.join(work, "labels.npz"), os.path.join(work, "sample.npz")
    np.savez(labels_npz, ids=got, labels=got // BLOCK)
    np.savez(vectors_npz, ids=got, vectors=vectors)
    return _score(labels_npz, vectors_npz)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=17_000_000)
    parser.add_argument("--length", type=int, default=6, help="nodes per walk")
    parser.add_argument("--inside", type=float, default=0.9, help="probability a step stays")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--window", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--sample-blocks", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--work", default=os.path.join(ROOT, "out", "bench", "scale"))
    args = parser.parse_args()
    work = os.path.join(args.work, f"{args.nodes}")
    walks = os.path.join(work, "walks")
    print(f"[scale] writing walks to {walks} ...", file=sys.stderr, flush=True)
    tokens = write_walks(walks, args.nodes, args.length, args.inside, seed=1)
    out, log = os.path.join(work, "embeddings"), os.path.join(work, "train.log")
    command = OURS + ["train", "--trainer", "sgns", "--walks", walks, "--output", out,
                      "--overwrite", "--master", "local[2]", "--dim", str(args.dim),
                      "--window", str(args.window), "--partitions", str(args.partitions),
                      "--chunks", "1"]
    print(f"[scale] {' '.join(command[2:])}", file=sys.stderr, flush=True)
    wall, peak = measure(command, args.timeout, log)
    text = open(log).read()
    task_peak = max((float(m) for m in re.findall(r"peak task memory ([\d.]+) GB", text)),
                    default=float("nan"))
    row = {"nodes": args.nodes, "dim": args.dim, "model_floats": args.nodes * args.dim,
           "past_mllib": args.nodes * args.dim >= MLLIB_CEILING, "tokens": tokens,
           "partitions": args.partitions, "wall_s": wall, "peak_gb": peak,
           "task_peak_gb": task_peak,
           "table_gb_per_task": 2 * args.nodes * args.dim * 4 / args.partitions / 1e9}
    if wall is not None:
        row.update(sample_scores(out, work, args.nodes, args.sample_blocks, seed=2))
    print(f"  {row}", file=sys.stderr, flush=True)
    report = "\n".join([
        "| nodes | dim | nodes x dim / 2^31 | tokens | P | wall s | tokens/s | peak GB (all) | "
        "peak GB (one task) | tables GB per task | macro-F1 (sample) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {args.nodes:,} | {args.dim} | {row['model_floats'] / MLLIB_CEILING:.2f} | {tokens:,} | "
        f"{args.partitions} | {wall if wall is None else round(wall, 1)} | "
        f"{'' if wall is None else f'{tokens / wall / 1e3:.0f}k'} | {peak:.2f} | "
        f"{task_peak:.2f} | {row['table_gb_per_task']:.2f} | {row.get('macro_f1', float('nan')):.4f} |"])
    print(report)
    write_report("scale", "Trainer scale benchmark", report, [row], notes=(
        f"Synthetic walks: one per node, {args.length} nodes, blocks of {BLOCK} ids, a step stays "
        f"in its block with probability {args.inside}. Window {args.window}, 5 negatives, 1 epoch, "
        f"1 chunk. Macro-F1 over {args.sample_blocks} random blocks' nodes (50/50 splits).\n\n"))


if __name__ == "__main__":
    main()
