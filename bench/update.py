"""The update benchmark (issue 17): `spark-n2v update` beside a full `spark-n2v run` on the new
graph, in one run.

A planted-partition graph (default 200k nodes, 2M edges, 20 blocks, mixing 0.6, Pareto degrees:
the trainer benchmark's hard graph, 10x larger) changes in two ways, each measured on its own:
- edges: 1% of the edges change, half removed (uniformly), half added (drawn by the same
  generator with another seed, so they follow the graph's law);
- nodes: 1% new nodes arrive with their edges (each in a uniform block, with a degree drawn from
  the graph's, each edge inside the block with the generator's probability, to endpoints drawn in
  proportion to their degree).
The previous output is `spark-n2v run` on the old graph (once, not timed against). Then, on the
new graph, `run` (the full rerun) and `update --previous` (for new nodes, with each
--new-node-start), each timed as a whole process. Scores:
macro-F1 of logistic regression on 50/50 splits (bench/peers/score.py) over every node of the new
graph, and over the new nodes alone; stability: median cosine between a node's previous and new
vector over the nodes that are not an end of a changed edge, by hops from the nearest end (a full
rerun starts from other random vectors: about 0). Writes bench/results/update-*.md.

    .venv/bin/python bench/update.py                       # 200k nodes, about an hour on 2 cores
    .venv/bin/python bench/update.py --nodes 20000 --edges 200000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp

from graphs import planted_partition, relabel, write
from run import HERE, OURS, PEERS, measure, stage_seconds, write_report

WALK_AND_TRAIN = ["--trainer", "sgns", "--seed", "1", "--master", "local[2]"]
HOPS = 3  # stability reported at 1, 2 and >= 3 hops
# The updates measured in each scenario (output folder, flags): new nodes both ways they start.
VARIANTS = {"edges": [("update", [])],
            "nodes": [("update", []), ("update-trainer-start", ["--new-node-start", "trainer"])]}


def _graph(args, work: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src, dst, labels = relabel(*planted_partition(args.nodes, args.edges, args.blocks,
                                                  args.inside, 1, args.pareto), args.nodes, 1)
    write(os.path.join(work, "old"), src, dst, labels)
    return src, dst, labels


def _changed_edges(src, dst, labels, args, work: str) -> tuple[np.ndarray, dict]:
    """1% of the edges changed: the new graph's folder; returns the changed edges' ends and the
    added and removed edges (pairs of ids)."""
    rng = np.random.default_rng(2)
    change = int(len(src) * args.change / 2)
    keep = np.ones(len(src), bool)
    keep[rng.choice(len(src), change, replace=False)] = False
    # the same blocks (the same permutation of ids): other edges
    more_src, more_dst, _ = relabel(*planted_partition(args.nodes, args.edges, args.blocks,
                                                       args.inside, 3, args.pareto), args.nodes, 1)
    present = set((np.minimum(src, dst) * args.nodes + np.maximum(src, dst)).tolist())
    key = np.minimum(more_src, more_dst) * args.nodes + np.maximum(more_src, more_dst)
    fresh = np.flatnonzero(~np.isin(key, list(present)))[:change]
    new_src = np.concatenate([src[keep], more_src[fresh]])
    new_dst = np.concatenate([dst[keep], more_dst[fresh]])
    write(os.path.join(work, "edges"), new_src, new_dst, labels)
    ends = np.unique(np.concatenate([src[~keep], dst[~keep], more_src[fresh], more_dst[fresh]]))
    return ends, {"added": (more_src[fresh], more_dst[fresh]), "removed": (src[~keep], dst[~keep])}


def _new_nodes(src, dst, labels, args, work: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """1% new nodes with their edges: the new graph's folder; returns (changed ends, new ids, the
    added edges)."""
    rng = np.random.default_rng(4)
    count = int(args.nodes * args.change)
    ends = np.concatenate([src, dst])
    degree = np.bincount(ends, minlength=args.nodes)
    new = np.arange(args.nodes, args.nodes + count)
    block = rng.integers(0, args.blocks, count)
    by_block = [ends[labels[ends] == b] for b in range(args.blocks)]
    us, vs = [], []
    for node, b, k in zip(new, block, rng.choice(degree[degree > 0], count)):
        inside = rng.random(k) < args.inside
        targets = np.where(inside, rng.choice(by_block[b], k), rng.choice(ends, k))
        us.append(np.full(k, node))
        vs.append(targets)
    us, vs = np.concatenate(us), np.concatenate(vs)
    write(os.path.join(work, "nodes"), np.concatenate([src, us]), np.concatenate([dst, vs]),
          np.concatenate([labels, block]))
    return np.unique(np.concatenate([us, vs])), new, {"added": (us, vs)}


def _hops(folder: str, ends: np.ndarray) -> np.ndarray:
    """Each node's hops to the nearest changed end in the new graph (HOPS for HOPS or more)."""
    edges = pq.read_table(os.path.join(folder, "edges.parquet"))
    a, b = edges.column("src").to_numpy(), edges.column("dst").to_numpy()
    n = int(max(a.max(), b.max())) + 1
    adjacency = sp.csr_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n))
    hops = np.full(n, HOPS)
    hops[ends] = 0
    frontier = np.zeros(n, bool)
    frontier[ends] = True
    for hop in range(1, HOPS):
        reached = (adjacency @ frontier.astype(np.float64) > 0) & (hops == HOPS)
        hops[reached] = hop
        frontier = reached
    return hops


def _vectors(out: str) -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(os.path.join(out, "embeddings"))
    ids = table.column("id").to_numpy()
    order = np.argsort(ids)
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    return ids[order], vectors[order]


def _score(folder: str, out: str, work: str, only: np.ndarray | None = None) -> float:
    ids, vectors = _vectors(out)
    labels = pq.read_table(os.path.join(folder, "labels.parquet"))
    label_ids = labels.column("id").to_numpy()
    keep = np.ones(len(label_ids), bool) if only is None else np.isin(label_ids, only)
    labels_npz, vectors_npz = os.path.join(work, "labels.npz"), os.path.join(work, "vectors.npz")
    np.savez(labels_npz, ids=label_ids[keep], labels=labels.column("label").to_numpy()[keep])
    np.savez(vectors_npz, ids=ids, vectors=vectors)
    scored = subprocess.run([PEERS, os.path.join(HERE, "peers", "score.py"), labels_npz,
                             vectors_npz], check=True, capture_output=True, text=True).stdout
    return json.loads(scored)[vectors_npz]["macro_f1"]


def _edge_cosines(out: str, pairs: dict) -> dict:
    """Median cosine between the two ends of the added and of the removed edges (those whose ends
    the output has): how far an output moved the changed edges' ends together and apart."""
    ids, vectors = _vectors(out)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    medians = {}
    for kind, (a, b) in pairs.items():
        both = np.isin(a, ids) & np.isin(b, ids)
        u, v = vectors[np.searchsorted(ids, a[both])], vectors[np.searchsorted(ids, b[both])]
        medians[kind] = float(np.median((u * v).sum(1))) if both.any() else None
    return medians


def _stability(previous: str, out: str, hops: np.ndarray) -> dict:
    """Median cosine of old and new vectors by hops (nodes of both, not a changed end)."""
    old_ids, old = _vectors(previous)
    ids, new = _vectors(out)
    both = np.intersect1d(old_ids, ids)
    u, v = old[np.searchsorted(old_ids, both)], new[np.searchsorted(ids, both)]
    cosine = (u * v).sum(1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
    at = hops[both]
    return {h: float(np.median(cosine[at == h])) for h in range(1, HOPS + 1) if (at == h).any()}


def _ours(command: list[str], out: str, args, name: str) -> dict:
    print(f"[update] {name} ...", file=sys.stderr, flush=True)
    seconds, peak = measure(OURS + command + ["--output", out, "--overwrite"] + WALK_AND_TRAIN,
                            args.timeout, out + ".log")
    if seconds is None:
        raise SystemExit(f"{name} failed; see {out}.log")
    return {"seconds": seconds, "peak_gb": peak, "stages": stage_seconds(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200_000)
    parser.add_argument("--edges", type=int, default=2_000_000)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--inside", type=float, default=0.4)
    parser.add_argument("--pareto", type=float, default=2.0)
    parser.add_argument("--change", type=float, default=0.01, help="share changed (default 0.01)")
    parser.add_argument("--only", default="edges,nodes")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--work", default=os.path.join("out", "bench", "update"))
    args = parser.parse_args()
    work = os.path.join(args.work, f"{args.nodes}-{args.edges}")
    os.makedirs(work, exist_ok=True)
    src, dst, labels = _graph(args, work)
    previous = os.path.join(work, "previous")
    base = _ours(["run", "--edges", os.path.join(work, "old", "edges.parquet")], previous, args,
                 "previous run")
    rows = []
    for scenario in args.only.split(","):
        folder = os.path.join(work, scenario)
        if scenario == "edges":
            (ends, pairs), new = _changed_edges(src, dst, labels, args, work), None
        else:
            ends, new, pairs = _new_nodes(src, dst, labels, args, work)
        edges = os.path.join(folder, "edges.parquet")
        full_out = os.path.join(folder, "full")
        full = _ours(["run", "--edges", edges], full_out, args, f"{scenario}: full run")
        hops = _hops(folder, ends)
        of_full = {"f1_full": _score(folder, full_out, work),
                   "stability_full": _stability(previous, full_out, hops)}
        if new is not None:
            of_full["f1_new_full"] = _score(folder, full_out, work, new)
        for name, flags in VARIANTS[scenario]:
            update_out = os.path.join(folder, name)
            update = _ours(["update", "--previous", previous, "--edges", edges, *flags],
                           update_out, args, f"{scenario}: {name}")
            record = json.load(open(os.path.join(update_out, "_run.json")))
            row = {"scenario": " ".join([scenario, *flags]), "full": full, "update": update,
                   "time_ratio": update["seconds"] / full["seconds"],
                   "changes": record["counts"]["changes"],
                   "walked_again": record["counts"]["walked_again"],
                   "trained_walks": record["counts"]["trained_walks"],
                   "walks": record["counts"]["walks"],
                   **of_full, "f1_update": _score(folder, update_out, work),
                   "stability_update": _stability(previous, update_out, hops),
                   "edge_cosines": {kind: _edge_cosines(out, pairs) for kind, out in
                                    (("previous", previous), ("full", full_out),
                                     ("update", update_out))},
                   "changed_ends": int(len(ends))}
            if new is not None:
                row["f1_new_update"] = _score(folder, update_out, work, new)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    report = _table(rows, base)
    print(report)
    write_report("update", "Update benchmark", report, rows)


def _table(rows: list[dict], base: dict) -> str:
    lines = [f"Previous run (old graph): {base['seconds']:.1f} s, stages {base['stages']}.\n",
             "| scenario | changes | walked again | full run s | update s | update / full | "
             "macro-F1 full | update | new nodes' F1 full | update | stability (median cosine "
             "by hops 1 / 2 / 3+) update | full rerun |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        changes = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in r["changes"].items() if v)
        stab = " / ".join(f"{v:.3f}" for v in r["stability_update"].values())
        stab_full = " / ".join(f"{v:.3f}" for v in r["stability_full"].values())
        new = (f"{r['f1_new_full']:.4f} | {r['f1_new_update']:.4f}" if "f1_new_full" in r
               else " | ")
        lines.append(f"| {r['scenario']} | {changes} | {r['walked_again']:,} ({r['trained_walks']:,} "
                     f"trained) of {r['walks']:,} "
                     f"| {r['full']['seconds']:.1f} | {r['update']['seconds']:.1f} | "
                     f"{r['time_ratio']:.2f} | {r['f1_full']:.4f} | {r['f1_update']:.4f} "
                     f"({r['f1_update'] - r['f1_full']:+.4f}) | {new} | {stab} | {stab_full} |")
    stages = [f"- {r['scenario']}: full run {r['full']['stages']}; update "
              f"{r['update']['stages']}" for r in rows]
    cosines = ["", "How far each output moved the changed edges' ends (median cosine between the "
               "ends of the added / removed edges; the previous output has no new node):"]
    for r in rows:
        cosines.append(f"- {r['scenario']}: " + "; ".join(
            f"{name} " + " / ".join("-" if v is None else f"{v:.3f}" for v in kinds.values())
            for name, kinds in r["edge_cosines"].items()))
    return "\n".join(lines + ["", "Stage seconds (from _run.json):", *stages, *cosines])


if __name__ == "__main__":
    main()
