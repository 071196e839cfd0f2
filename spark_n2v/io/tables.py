"""The stages' inputs other than edges: our own tables (walks, embeddings), labels and id lists,
each checked as it is read, with errors that name the parameter it came from (`name`: a stage
input such as "embeddings", or a config field such as "similar.ids").

A table is a path Spark reads (the CLI) or a DataFrame already in the session (the Python API):
`Table`. Errors then say "(a DataFrame)" where they would give the path."""

from __future__ import annotations

import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_n2v import columns as C
from spark_n2v.errors import UserError, first_line
from spark_n2v.io.files import is_local, local_path
from spark_n2v.io.formats import by_extension

Table = str | DataFrame  # a path, or a DataFrame (the Python API)


def shown(table: Table) -> str:
    """How errors name a table: its path, or that it is a DataFrame."""
    return "(a DataFrame)" if isinstance(table, DataFrame) else table


def read_parquet_table(spark: SparkSession, path: Table, name: str, needed: tuple[str, ...]
                       ) -> DataFrame:
    """One of our own tables, checking it has the columns we need."""
    if isinstance(path, DataFrame):
        return _with_columns(path, shown(path), name, needed)
    if is_local(path) and not os.path.exists(local_path(path)):
        raise UserError("{" + name + "} {path}: no such folder", path=path)
    try:
        df = spark.read.parquet(path)
    except Exception as exc:  # noqa: BLE001
        raise UserError("{" + name + "} {path}: not a Parquet table ({why})", path=path,
                        why=first_line(exc)) from None
    return _with_columns(df, path, name, needed)


def _with_columns(df: DataFrame, path: str, name: str, needed: tuple[str, ...]) -> DataFrame:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise UserError("{" + name + "} {path}: no column {column!r}; columns found: {found}",
                        path=path, column=missing[0], found=", ".join(df.columns))
    return df


def read_walks(spark: SparkSession, path: Table, name: str = "walks") -> DataFrame:
    """A walks table (walk_id, walk)."""
    return read_parquet_table(spark, path, name, (C.WALK,))


def check_embeddings(embeddings: DataFrame, name: str) -> tuple[int, int]:
    """(nodes, dim), after checking every vector has the same length and no id is missing."""
    holes = F.col(C.EMBEDDING).isNull() | F.exists(C.EMBEDDING, lambda x: x.isNull())
    row = embeddings.agg(F.count("*").alias("n"), F.min(F.size(C.EMBEDDING)).alias("lo"),
                         F.max(F.size(C.EMBEDDING)).alias("hi"),
                         F.sum(F.col(C.ID).isNull().cast("int")).alias("null_ids"),
                         F.sum(holes.cast("int")).alias("holes")).first()
    where = "{" + name + "}: "
    if row["n"] == 0:
        raise UserError(where + "the embeddings table is empty")
    if row["null_ids"]:
        raise UserError(where + "{n} rows have no id; the table must have one row per node",
                        n=row["null_ids"])
    if row["holes"]:
        raise UserError(where + "{n} rows have no embedding or a null in it; every node needs "
                        "a whole vector", n=row["holes"])
    if row["lo"] is None or row["lo"] < 1 or row["lo"] != row["hi"]:
        raise UserError(where + "embeddings must all have the same length >= 1 (found lengths "
                        "{lo} to {hi}); is this a table written by spark-n2v train?",
                        lo=row["lo"], hi=row["hi"])
    return row["n"], row["lo"]


def read_embeddings(spark: SparkSession, path: Table, name: str = "embeddings"
                    ) -> tuple[DataFrame, int, int]:
    """An embeddings table, checked: (DataFrame (id, embedding array<float>), nodes, dim)."""
    emb = read_parquet_table(spark, path, name, (C.ID, C.EMBEDDING))
    # array<float> whatever the writer used (pyarrow writes Python floats as doubles)
    emb = emb.select(C.ID, F.col(C.EMBEDDING).cast("array<float>").alias(C.EMBEDDING))
    nodes, dim = check_embeddings(emb, name)
    return emb, nodes, dim


def read_labels(spark: SparkSession, labels: Table, id_type: T.DataType, name: str = "labels"
                ) -> DataFrame:
    """(id, label string) from Parquet, or CSV/TSV with a header (by the name's extension), or a
    DataFrame, ids cast to the embeddings' id type."""
    path = shown(labels)
    table = labels if isinstance(labels, DataFrame) else _labels_file(spark, labels, name)
    missing = [c for c in (C.ID, C.LABEL) if c not in table.columns]
    if missing:
        raise UserError("{" + name + "} {path}: no column {column!r} (columns found: {found}); "
                        "labels need columns id and label", path=path, column=missing[0],
                        found=", ".join(table.columns))
    rows = table.select(F.col(C.ID).alias("_raw"), F.col(C.ID).try_cast(id_type).alias(C.ID),
                        F.col(C.LABEL).cast("string").alias(C.LABEL))
    bad = rows.where(F.col(C.ID).isNull() | F.col(C.LABEL).isNull()).first()
    if bad is not None:
        if bad["_raw"] is not None and bad[C.ID] is None:
            raise UserError("{" + name + "} {path}: id {raw!r} is not of the embeddings' id type "
                            "({type})", path=path, raw=bad["_raw"], type=id_type.simpleString())
        raise UserError("{" + name + "} {path}: a row has no id or no label", path=path)
    return rows.select(C.ID, C.LABEL).distinct()


def _labels_file(spark: SparkSession, path: str, name: str) -> DataFrame:
    fmt = by_extension(path)
    try:
        if fmt in ("csv", "tsv"):
            return (spark.read.option("header", True)
                    .option("sep", "," if fmt == "csv" else "\t").csv(path))
        return spark.read.parquet(path)
    except Exception as exc:  # noqa: BLE001
        raise UserError("{" + name + "} {path}: cannot read it as {fmt} ({why})", path=path,
                        fmt=fmt if fmt in ("csv", "tsv") else "parquet",
                        why=first_line(exc)) from None


def read_ids(spark: SparkSession, path: str, id_type: T.DataType, name: str) -> DataFrame:
    """A text file of node ids, one per line (blank lines skipped), as a one-column DataFrame."""
    if is_local(path) and not os.path.isfile(local_path(path)):
        raise UserError("{" + name + "} {path}: no such file", path=path)
    lines = spark.read.text(path).select(F.trim("value").alias("_text")).where("_text != ''")
    ids = lines.select("_text", F.col("_text").try_cast(id_type).alias(C.ID))
    bad = ids.where(F.col(C.ID).isNull()).first()
    if bad is not None:
        raise UserError("{" + name + "} {path}: {text!r} is not a node id of the embeddings' type "
                        "({type})", path=path, text=bad["_text"], type=id_type.simpleString())
    return ids.select(C.ID).distinct()
