"""Column names: the one place they are spelled.

The public tables (walks, embeddings, neighbours, predictions) are part of the product: analysts
read them by these names. The internal ones pass between functions, tasks and work files. A name
that one function keeps to itself starts with `_` and stays in that function.
"""

# Public tables.
WALK_ID = "walk_id"      # walks: long
WALK = "walk"            # walks: array of node ids, in the input's id type
ID = "id"                # embeddings, labels, neighbours, predictions: node id, in the input's type
EMBEDDING = "embedding"  # embeddings: array<float>
NEIGHBOR = "neighbor"    # neighbours: the similar node's id
SIMILARITY = "similarity"  # neighbours: cosine similarity, float
RANK = "rank"            # neighbours: 1..k, most similar first; sgns vocabulary: rank by count
LABEL = "label"          # labels and predictions: class label, string (array when multi-label);
                         # linkpred's pairs: 1.0 for an edge, 0.0 for a non-edge
PREDICTION = "prediction"  # predictions: predicted label (array when multi-label)
SPLIT = "split"          # predictions: TRAIN or TEST
TRAIN, TEST = "train", "test"  # the values of SPLIT

# Edges and the prepared graph (internal). Nodes are indexed 0..V-1 by the sort order of their ids.
SRC = "src"              # edge source: the input's id, then its index once prepared
DST = "dst"              # edge target, likewise
WEIGHT = "weight"        # positive double
NODE = "node"            # dense node index, long
NBRS = "nbrs"            # adjacency: out-neighbour indices, sorted ascending
CUM = "cum"              # adjacency: cumulative normalised weights (last = 1.0); null when unweighted

# Walker state (internal: the sharded engine's step loop).
PREV = "prev"            # node the walker came from, -1 before the first step
CUR = "cur"              # node the walker stands on, -1 once its walk ended
STEP = "step"            # index of `cur` in the walk (the start is step 0)
NEXT = "next"            # node chosen for the next step, -1 while undecided or at a dead end
QUERY_X = "query_x"      # candidates whose acceptance needs the edge test prev -> x
FALLBACK = "fallback"    # first locally accepted candidate after the queries, -1 if none
VISITED = "visited"      # id of the node at index `step` of the walk (decoded in its shard)
SHARD = "shard"          # a walkers packet's destination: the shard whose task takes it; else -1
BLOCK = "block"          # a visits packet's destination: the block of walk ids it belongs to
PACKET = "packet"        # rows (walkers or visits) as one Arrow IPC stream, binary

# The sgns trainer's vocabulary and token files (internal).
COUNT = "count"          # a node's tokens in the walks
PART = "part"            # a node's partition (also the files' folder key: part=i)
LOCAL = "local"          # a node's row in its partition's tables
CHUNK = "chunk"          # the chunk of the epoch a walk trains in (folder key: chunk=c)
POS = "pos"              # a token's position in its walk
WIN = "win"              # a centre's reduced window
BUCKET = "bucket"        # a node id's bucket of token files before the split (folder key)

# Files of Python tasks sent through Spark (io/taskfiles.py, internal).
FILE = "file"            # the file a row belongs to (folder key: file=NAME)
SEQ = "seq"              # the row's piece of its file, from 0
DATA = "data"            # the piece's bytes, binary

# Incremental updates (internal): what changed between two edge tables.
CHANGE = "change"        # an arc's or a node's change: one of the values below
ADDED, REMOVED, REWEIGHTED = "added", "removed", "reweighted"  # arcs' changes
NEW, VANISHED = "new", "vanished"  # nodes' changes
HOPS = "hops"            # a node's hops to the nearest changed node (0: it is one)
NEIGHBOUR = "neighbour"  # a new node's neighbour (in the previous graph), whose vectors it starts at

# Evaluation stages (internal).
LABELS = "labels"        # classify: a node's labels, array<string>, sorted
PREDICTED = "predicted"  # classify: predicted labels, array<string>
FEATURES = "features"    # classify, linkpred: the model's input vector (ML Vector)
U, V = "u", "v"          # linkpred: a node pair (u < v when undirected)
SCORE = "score"          # linkpred: the model's probability of an edge
DRAW = "draw"            # linkpred: a pair's 0-based rank in its seeded draw
