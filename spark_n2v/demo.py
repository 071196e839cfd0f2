"""`make demo`: embed the Les Misérables co-appearance graph and show a few nearest neighbours.

The graph (77 characters, 254 weighted edges; Knuth's Stanford GraphBase) ships with the package.
The run goes through the same CLI a user calls; the neighbour lookup at the end reads the small
embeddings table with pyarrow (a demo-sized table: never do this with a graph-sized one).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq

from spark_n2v import cli

DATA = os.path.join(os.path.dirname(__file__), "data", "lesmis.csv")
FAMOUS = ("Valjean", "Javert", "Cosette", "Marius", "Thenardier", "Myriel")


def nearest(ids: list[str], vectors: np.ndarray, query: str, k: int = 5) -> list[tuple[str, float]]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = unit @ unit[ids.index(query)]
    order = [i for i in np.argsort(-scores) if ids[i] != query][:k]
    return [(ids[i], float(scores[i])) for i in order]


def main(argv: list[str] | None = None) -> int:
    output = (argv or sys.argv[1:] or ["out/demo"])[0]
    code = cli.main(["run", "--edges", DATA, "--output", output, "--overwrite", "--weighted",
                     "--walk-length", "40", "--num-walks", "10", "--p", "1", "--q", "0.5",
                     "--dim", "32", "--window", "5", "--epochs", "5", "--seed", "7"])
    if code:
        return code
    table = pq.read_table(os.path.join(output, "embeddings")).to_pydict()
    ids, vectors = table["id"], np.array(table["embedding"], dtype=np.float64)
    with open(os.path.join(output, "_run.json")) as handle:
        record = json.load(handle)
    print(f"\nLes Misérables: {record['graph']['nodes']} characters, {record['graph']['edges']} "
          f"co-appearance edges, {record['counts']['walks']} walks of 40 nodes")
    seconds = record["seconds"]
    print("time per stage (s): " + ", ".join(f"{k} {seconds[k]}" for k in
                                             ("prepare", "walk", "train", "total")))
    print("nearest neighbours by cosine similarity:")
    for name in FAMOUS:
        print(f"  {name:11s} " + ", ".join(f"{n} ({s:.2f})" for n, s in nearest(ids, vectors, name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
