"""What a run's output keeps for the next update, in DIR/_update (`_`: not part of the tables
analysts read):

    edges/   the checked edge table the run embedded (src, dst, weight; the input's id type):
             the next update diffs its new edges against it
    model/   the trainer's state a warm start needs (sgns: both tables and the vocabulary with
             its counts; train.sgns.keep_model)

An update's output keeps the same, for the update after it.
"""

from __future__ import annotations

KEPT = "_update"
EDGES = f"{KEPT}/edges"
MODEL = f"{KEPT}/model"
