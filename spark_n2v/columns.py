"""Column names: the one place they are spelled.

The public tables (walks, embeddings) are part of the product: analysts read them by these names.
The internal names are used between the prepare and walk stages only.
"""

# Public tables.
WALK_ID = "walk_id"      # walks: long
WALK = "walk"            # walks: array of node ids, in the input's id type
ID = "id"                # embeddings: node id, in the input's id type
EMBEDDING = "embedding"  # embeddings: array<float>
NEIGHBOR = "neighbor"    # neighbours: the similar node's id
SIMILARITY = "similarity"  # neighbours: cosine similarity, float
RANK = "rank"            # neighbours: 1..k, most similar first
LABEL = "label"          # labels and predictions: class label, string
PREDICTION = "prediction"  # predictions: predicted label
SPLIT = "split"          # predictions: train or test

# Prepared graph (internal). Nodes are indexed 0..V-1 by the sort order of their ids.
NODE = "node"            # dense node index, long
SRC = "src"              # edge source index
DST = "dst"              # edge target index
WEIGHT = "weight"        # positive double
NBRS = "nbrs"            # adjacency: out-neighbour indices, sorted ascending
CUM = "cum"              # adjacency: cumulative normalised weights (last = 1.0); null when unweighted

# Walker state (internal).
PREV = "prev"            # node the walker came from, -1 before the first step
CUR = "cur"              # node the walker stands on
STEP = "step"            # index of `cur` in the walk (the start is step 0)
ATTEMPT = "attempt"      # first rejection-sampling attempt of the current step
DONE = "done"            # the walk has ended (length reached, or a node with no out-edges)
SEG = "seg"              # nodes visited since the last lineage cut
SEG_START = "seg_start"  # step index of seg[0]
NEXT = "next"            # node chosen for the next step, -1 while undecided
QUERY_X = "query_x"      # candidates whose acceptance needs the edge test prev -> x
QUERY_U = "query_u"      # their scaled uniforms: accept when query_u < alpha(prev, x)
FALLBACK = "fallback"    # first locally accepted candidate after the queries, -1 if none
GROUP = "group_key"      # key walkers are grouped by to meet one copy of the adjacency
WALKERS = "walkers"      # grouped walkers
