"""What every engine's prepare shares: the graph's statistics and the cumulative weights, computed
the same way (bit for bit) whichever engine prepares the graph."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from spark_n2v.io.edges import EdgeTable


@dataclass(frozen=True)
class GraphStats:
    input_rows: int
    self_loops_dropped: int
    duplicates_merged: int
    nodes: int
    edges: int                 # undirected: distinct edges; directed: distinct arcs
    nodes_without_out_edges: int
    directed: bool
    weighted: bool

    @classmethod
    def of(cls, table: EdgeTable, nodes: int, edges: int, without_out_edges: int, directed: bool,
           weighted: bool) -> GraphStats:
        """From what reading the edges found and what preparing the graph found."""
        return cls(input_rows=table.rows, self_loops_dropped=table.self_loops,
                   duplicates_merged=table.rows - table.self_loops - edges, nodes=nodes,
                   edges=edges, nodes_without_out_edges=without_out_edges, directed=directed,
                   weighted=weighted)

    def as_dict(self) -> dict:
        return asdict(self)


def row_cumulative(weights: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-row cumulative normalised weights of a flat list of rows (row r is
    weights[offsets[r]:offsets[r + 1]]); the last entry of each row is exactly 1.0.

    Each row is summed on its own, left to right (as np.cumsum does), so a row's result does not
    depend on which rows share the array: both prepare paths get the same bits. One pass per
    position, over the rows still that long, so hubs cost passes but no per-row Python.
    """
    cum = np.array(weights, dtype=np.float64)
    starts, lengths = offsets[:-1], np.diff(offsets)
    rows = np.flatnonzero(lengths > 1)
    position = 1
    while len(rows):
        at = starts[rows] + position
        cum[at] += cum[at - 1]
        position += 1
        rows = rows[lengths[rows] > position]
    filled = lengths > 0
    ends = offsets[1:][filled] - 1
    cum /= np.repeat(cum[ends], lengths[filled])
    cum[ends] = 1.0
    return cum
