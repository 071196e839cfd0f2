"""Make spark_n2v/data/lesmis_labels.csv: communities of the demo graph (Les Misérables), so that
classify, tune and plot have labels to work with on it.

The labels are Louvain communities (networkx, edge weights used, seed 1): a structural grouping,
not ground truth, in the spirit of node2vec's Les Misérables figure (which coloured its clusters).
networkx is not a dependency of the project; run this once in any environment that has it:

    python -m venv /tmp/nx && /tmp/nx/bin/pip install networkx
    /tmp/nx/bin/python bench/lesmis_labels.py
"""

import csv
import os

import networkx as nx

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spark_n2v", "data")

graph = nx.Graph()
with open(os.path.join(DATA, "lesmis.csv")) as handle:
    for row in csv.DictReader(handle):
        graph.add_edge(row["src"], row["dst"], weight=float(row["weight"]))
communities = nx.community.louvain_communities(graph, weight="weight", seed=1)
# community 0 is the largest; ties by the first name in it
communities = sorted(communities, key=lambda c: (-len(c), min(c)))
with open(os.path.join(DATA, "lesmis_labels.csv"), "w", newline="") as handle:
    out = csv.writer(handle)
    out.writerow(["id", "label"])
    for k, members in enumerate(communities):
        for name in sorted(members):
            out.writerow([name, f"c{k}"])
print(f"{graph.number_of_nodes()} nodes in {len(communities)} communities: "
      f"{[len(c) for c in communities]}")
