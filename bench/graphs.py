"""Benchmark graphs, generated with numpy and a fixed seed: simple (no self-loops, no duplicates),
undirected, unweighted, written as Parquet (src, dst) and as a tab-separated edge list (.edg) that
PecanPy reads, so every tool walks the very same graph.

- planted partition: `blocks` equal communities; each edge stays inside its source's block with
  probability `inside`, else joins two uniform nodes (labels = block, for classification).
- Chung-Lu power law: endpoint i drawn with weight (i + offset)^(-1/(gamma-1)), so the degree
  distribution has exponent gamma; `offset` tunes the largest hub.

Node ids are a random permutation (`--keep-ids` keeps the generators' order, where each block's
ids are consecutive): ids say nothing about blocks, so a trainer that sorted by id would not find
the communities for free. `graph.json` in the folder records the arguments: `ensure` regenerates a
folder made with other ones (graphs of earlier versions kept their ids).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as csv
import pyarrow.parquet as pq


def _simple(src: np.ndarray, dst: np.ndarray, nodes: int, edges: int, rng) -> tuple:
    """Drop self-loops and duplicates (either direction), shuffle, keep `edges` of them."""
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    keys = np.unique((lo * nodes + hi)[lo != hi])
    if len(keys) < edges:
        raise SystemExit(f"generator made only {len(keys)} distinct edges; ask for fewer")
    keys = rng.permutation(keys)[:edges]
    return keys // nodes, keys % nodes


def planted_partition(nodes: int, edges: int, blocks: int, inside: float, seed: int,
                      pareto: float | None = None):
    """Endpoints are uniform, or with `pareto` drawn in proportion to Pareto(pareto) node weights
    (heterogeneous degrees, which make classification harder and hubs appear)."""
    rng = np.random.default_rng(seed)
    size = nodes // blocks
    draw = int(edges * 1.1) + 1000
    if not pareto:
        src = rng.integers(0, nodes, draw)
        local = (src // size).clip(max=blocks - 1) * size + rng.integers(0, size, draw)
        dst = np.where(rng.random(draw) < inside, local, rng.integers(0, nodes, draw))
    else:
        cdf = np.cumsum(rng.pareto(pareto, nodes) + 1.0)
        cdf /= cdf[-1]
        src = np.minimum(np.searchsorted(cdf, rng.random(draw), side="right"), nodes - 1)
        block = (src // size).clip(max=blocks - 1)
        lo = np.where(block > 0, cdf[np.maximum(block * size - 1, 0)], 0.0)
        hi = np.where(block == blocks - 1, 1.0, cdf[np.minimum((block + 1) * size, nodes) - 1])
        local = np.searchsorted(cdf, lo + (hi - lo) * rng.random(draw), side="right")
        anywhere = np.searchsorted(cdf, rng.random(draw), side="right")
        dst = np.where(rng.random(draw) < inside, local, anywhere)
    a, b = _simple(src, np.minimum(dst, nodes - 1), nodes, edges, rng)
    labels = (np.arange(nodes) // size).clip(max=blocks - 1)
    return a, b, labels


def chung_lu(nodes: int, edges: int, gamma: float, offset: float, seed: int):
    rng = np.random.default_rng(seed)
    weight = (np.arange(nodes) + offset) ** (-1.0 / (gamma - 1.0))
    cdf = np.cumsum(weight)
    cdf /= cdf[-1]
    draw = int(edges * 1.25) + 1000
    src = np.searchsorted(cdf, rng.random(draw), side="right")
    dst = np.searchsorted(cdf, rng.random(draw), side="right")
    return _simple(np.minimum(src, nodes - 1), np.minimum(dst, nodes - 1), nodes, edges, rng)


def relabel(src: np.ndarray, dst: np.ndarray, labels: np.ndarray | None, nodes: int, seed: int):
    """Node i becomes node perm[i], for a random permutation perm: (src, dst, labels by new id)."""
    perm = np.random.default_rng([seed, 1]).permutation(nodes)
    moved = None
    if labels is not None:
        moved = np.empty_like(labels)
        moved[perm] = labels
    return perm[src], perm[dst], moved


def write(folder: str, src: np.ndarray, dst: np.ndarray, labels: np.ndarray | None = None) -> None:
    os.makedirs(folder, exist_ok=True)
    pq.write_table(pa.table({"src": src.astype(np.int64), "dst": dst.astype(np.int64)}),
                   os.path.join(folder, "edges.parquet"))
    csv.write_csv(pa.table({"src": src, "dst": dst}), os.path.join(folder, "edges.edg"),
                  csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"))
    if labels is not None:
        pq.write_table(pa.table({"id": np.arange(len(labels), dtype=np.int64),
                                 "label": labels.astype(np.int64)}),
                       os.path.join(folder, "labels.parquet"))


def degree_stats(src: np.ndarray, dst: np.ndarray, nodes: int) -> dict:
    degree = np.bincount(np.concatenate([src, dst]), minlength=nodes)
    return {"nodes": int(nodes), "edges": int(len(src)), "max_degree": int(degree.max()),
            "isolated": int((degree == 0).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["planted", "powerlaw"])
    parser.add_argument("folder")
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--edges", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inside", type=float, default=0.8,
                        help="planted: share of edges inside a block (default 0.8)")
    parser.add_argument("--pareto", type=float, default=None,
                        help="planted: Pareto shape of node weights (default: uniform endpoints)")
    parser.add_argument("--blocks", type=int, default=20, help="planted: blocks (default 20)")
    parser.add_argument("--keep-ids", action="store_true",
                        help="keep the generators' ids (each block's consecutive) instead of a "
                             "random permutation")
    args = parser.parse_args()
    labels = None
    if args.kind == "planted":
        src, dst, labels = planted_partition(args.nodes, args.edges, args.blocks, args.inside,
                                             args.seed, args.pareto)
    else:
        src, dst = chung_lu(args.nodes, args.edges, 2.2, 1.0, args.seed)
    if not args.keep_ids:
        src, dst, labels = relabel(src, dst, labels, args.nodes, args.seed)
    write(args.folder, src, dst, labels)
    with open(os.path.join(args.folder, "graph.json"), "w") as handle:
        json.dump(sys.argv[2:], handle)
    print(degree_stats(src, dst, args.nodes))


def ensure(kind: str, folder: str, *args: str) -> str:
    """folder, holding the graph `graphs.py kind folder *args` makes: generated unless it is
    there, made with these arguments."""
    stamp = os.path.join(folder, "graph.json")
    if os.path.exists(stamp):
        with open(stamp) as handle:
            if json.load(handle) == list(args):
                return folder
    subprocess.run([sys.executable, os.path.abspath(__file__), kind, folder, *args], check=True)
    return folder


if __name__ == "__main__":
    main()
