"""A table's format from its name: the one detector for every input (edges, labels)."""

from __future__ import annotations

import os

from spark_n2v.io.files import data_files, is_local, local_path

EDGE_FORMATS = ("parquet", "csv", "tsv", "snap")
EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv",
              ".tab": "tsv", ".txt": "snap", ".edges": "snap", ".edgelist": "snap", ".el": "snap"}
DELIMITERS = {"csv": ",", "tsv": "\t", "snap": r"\s+"}


def by_extension(path: str) -> str | None:
    """The format its extension names (.gz aside), or None. A local folder is named by its first
    data file, as Spark writes part files into folders."""
    path = path.rstrip("/")
    if is_local(path) and os.path.isdir(local_path(path)):
        files = data_files(path)
        path = files[0] if files else path
    suffix = os.path.splitext(path[:-3] if path.endswith(".gz") else path)[1].lower()
    return EXTENSIONS.get(suffix)
