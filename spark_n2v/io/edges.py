"""Edge tables: checked at the boundary, read into typed (src, dst, weight) rows.

Missing files and columns are found before Spark starts (for local paths); bad rows are found in one
pass over the data and reported with their line. The Python API hands a DataFrame instead of a path:
`EdgeSource` is either, for the stages.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import os
import re
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator
from urllib.parse import urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_n2v.config import EdgeInput
from spark_n2v.errors import UserError, first_line, unreadable_file
from spark_n2v.io.files import data_files, is_local, local_path
from spark_n2v.io.formats import DELIMITERS, EXTENSIONS, by_extension

BOM = "\ufeff"  # a UTF-8 byte-order mark some tools write at the start of a CSV file
# Integer ids are kept as longs only when they read back exactly as written ("007" stays a string).
_INTEGER = r"^-?(0|[1-9][0-9]{0,17})$"
# How a missing weight column is named: the switch that needs it, and the column's parameter.
_WEIGHT_COLUMN = "{input.weighted=True} needs a weight column: {input.weight_col}"


def detect_format(cfg: EdgeInput) -> str:
    fmt = cfg.format or by_extension(cfg.path)
    if fmt is None:
        raise UserError("{input.path} {path}: cannot tell the format from the name; pass "
                        "{input.format} {formats}", path=cfg.path,
                        formats="|".join(sorted(set(EXTENSIONS.values()))))
    return fmt


@dataclass(frozen=True)
class EdgeLayout:
    """Where src, dst and weight are in a text file, or their names in a Parquet table."""

    format: str
    src: str | int
    dst: str | int
    weight: str | int | None
    fields: int | None              # text: fields every data row must have
    header: tuple[str, ...] | None  # text with a header: its fields, skipped wherever they appear


def _split(line: str, fmt: str) -> list[str]:
    """One line's fields, as the Spark-side parse reads them (the header, the first row)."""
    line = line.lstrip(BOM).rstrip("\r\n")
    if fmt == "snap":
        return line.split()
    return [_unquoted(f) for f in next(csv.reader([line], delimiter=DELIMITERS[fmt]), [""])]


def _unquoted(field: str) -> str:
    return field.strip(" ")


def _pick(param: str, name: str, found: list[str], what: str) -> str:
    if name not in found:
        raise UserError("{what}: no column {name!r} (" + param + "); columns found: {found}",
                        what=what, name=name, found=", ".join(found))
    return name


def _position(name: str, default: int) -> int:
    return int(name) if name.isdigit() else default


def layout(cfg: EdgeInput, fmt: str, head: list[str] | None, parquet_columns: list[str] | None
           ) -> EdgeLayout:
    """Check the columns against the header (text) or schema (Parquet) and say where they are.

    `head` holds the first lines of the first file (text formats).
    """
    if fmt == "parquet":
        cols = parquet_columns or []
        src = _pick("{input.src_col}", cfg.src_col, cols, cfg.path)
        dst = _pick("{input.dst_col}", cfg.dst_col, cols, cfg.path)
        weight = _pick(_WEIGHT_COLUMN, cfg.weight_col, cols, cfg.path) if cfg.weighted else None
        return EdgeLayout(fmt, src, dst, weight, None, None)
    lines = [ln for ln in (head or []) if ln.strip() and not (fmt == "snap" and ln.lstrip().startswith("#"))]
    if not lines:
        raise UserError("{path}: no edges (the file is empty)", path=cfg.path)
    if fmt in ("csv", "tsv") and cfg.header:
        names = _split(lines[0], fmt)
        src = names.index(_pick("{input.src_col}", cfg.src_col, names, cfg.path))
        dst = names.index(_pick("{input.dst_col}", cfg.dst_col, names, cfg.path))
        weight = names.index(_pick(_WEIGHT_COLUMN, cfg.weight_col, names, cfg.path)) \
            if cfg.weighted else None
        return EdgeLayout(fmt, src, dst, weight, len(names), tuple(names))
    fields = len(_split(lines[0], fmt))
    src, dst = _position(cfg.src_col, 0), _position(cfg.dst_col, 1)
    weight = _position(cfg.weight_col, 2) if cfg.weighted else None
    for param, pos in (("{input.src_col}", src), ("{input.dst_col}", dst), (_WEIGHT_COLUMN, weight)):
        if pos is not None and pos >= fields:
            raise UserError("{path}: " + param + " is column {pos} (from 0) but the first row has "
                            "{fields} fields", path=cfg.path, pos=pos, fields=fields)
    return EdgeLayout(fmt, src, dst, weight, fields, None)


def inspect_local(cfg: EdgeInput) -> EdgeLayout | None:
    """Pre-Spark checks for a local path: it exists, its format, its columns. None if remote."""
    if not is_local(cfg.path):
        return None
    if not os.path.exists(local_path(cfg.path)):
        raise UserError("{input.path} {path}: no such file or folder", path=cfg.path)
    files = data_files(cfg.path)
    if not files:
        raise UserError("{input.path} {path}: the folder holds no data files", path=cfg.path)
    fmt = detect_format(cfg)
    if fmt == "parquet":
        import pyarrow.parquet as pq
        try:
            names = pq.read_schema(files[0]).names
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
            raise UserError("{input.path} {file}: not a readable Parquet file ({exc})",
                            file=files[0], exc=exc) from None
        return layout(cfg, fmt, None, names)
    if files[0].endswith(".gz"):
        import gzip
        opener: Callable = lambda f: gzip.open(f, "rt", encoding="utf-8", errors="replace")  # noqa: E731
    else:
        opener = lambda f: open(f, encoding="utf-8", errors="replace")  # noqa: E731
    with opener(files[0]) as handle:
        head = [line for _, line in zip(range(1000), handle)]
    return layout(cfg, fmt, head, None)


def inspect_spark(spark: SparkSession, cfg: EdgeInput) -> EdgeLayout:
    """The same checks through Spark, for paths Python cannot open (hdfs://, s3a://, ...)."""
    fmt = detect_format(cfg)
    try:
        if fmt == "parquet":
            return layout(cfg, fmt, None, spark.read.parquet(cfg.path).columns)
        head = [r.value for r in _text(spark, cfg.path).limit(1000).collect()]
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise UserError("{input.path} {path}: cannot read it ({why})", path=cfg.path,
                        why=first_line(exc)) from None
    return layout(cfg, fmt, head, None)


# --- parsing and validation -------------------------------------------------------------------

def _weight_problem(weight: "F.Column", raw: "F.Column") -> "F.Column":
    shown = F.concat(F.lit("'"), raw.cast("string"), F.lit("'"))
    return (F.when(weight.isNull(), F.concat(F.lit("weight "), F.coalesce(shown, F.lit("(empty)")),
                                             F.lit(" is not a number")))
            .when(F.isnan(weight), F.lit("weight is NaN"))
            .when(F.abs(weight) == float("inf"), F.lit("weight is infinite"))
            .when(weight <= 0, F.concat(F.lit("weight "), shown, F.lit(" is not positive"))))


def _text(spark: SparkSession, path: str) -> DataFrame:
    """A text input's lines, from a file or every file under a folder (sub-folders too)."""
    return spark.read.option("recursiveFileLookup", "true").text(path)


def _quoted_field(delimiter: str) -> str:
    """A Java regex of one CSV field and the delimiter before it (RFC 4180: a quoted field may
    hold the delimiter and doubled quotes); group 1 is the field."""
    d = re.escape(delimiter)
    return f'(?:^|{d})( *"(?:[^"]|"")*" *(?={d}|$)|[^{d}]*)'


def _unquoted_column(field: "F.Column") -> "F.Column":
    """A raw field -> its value: spaces around it dropped; a quoted one unquoted, "" read as "."""
    t = F.trim(field)
    return F.trim(F.when(t.rlike(r'^".*"$') & (F.length(t) >= 2),
                         F.regexp_replace(F.regexp_extract(t, r'^"(.*)"$', 1), '""', '"'))
                  .otherwise(t))


def _line_fields(lines: DataFrame, fmt: str) -> DataFrame:
    """Raw lines (column `value`) -> their fields `_f` (blank and comment lines dropped) and
    `_open` (a CSV line with an odd number of quotes: a quoted field goes on past the line)."""
    value = F.regexp_replace(F.regexp_replace("value", r"\r$", ""), "^" + BOM, "")
    skip = F.trim(value) == ""
    if fmt == "snap":
        skip = skip | F.ltrim(value).startswith("#")
        fields, unbalanced = F.split(F.trim(value), r"\s+"), F.lit(False)
    else:
        fields = F.transform(F.regexp_extract_all(value, F.lit(_quoted_field(DELIMITERS[fmt])), 1),
                             _unquoted_column)
        unbalanced = (F.length(value) - F.length(F.regexp_replace(value, '"', ""))) % 2 == 1
    return lines.where(~skip).select("*", fields.alias("_f"), unbalanced.alias("_open"))


def _records(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    """CSV/TSV records that may span lines (a quoted field holding a line break), read by
    Python's csv module (RFC 4180), one task per file: `file`, `line` (where the record starts),
    `_f`. A local file is streamed; elsewhere Spark hands the task the file's bytes (its
    binaryFile source: files up to 2 GB), so the executors need nothing but Spark."""
    delimiter = DELIMITERS[fmt]

    def parse(file: str, raw) -> Iterator[tuple]:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        line = 1
        for record in reader:
            fields = [_unquoted(f) for f in record]
            if any(fields):
                yield file, line, fields
            line = reader.line_num + 1

    schema = "file string, line long, _f array<string>"
    files = _text(spark, path).inputFiles()
    if all(is_local(f) for f in files):
        def read(file: str) -> Iterator[tuple]:
            with open(local_path(file), "rb") as handle:
                yield from parse(file, _decompressed(file, handle))

        rows = spark.sparkContext.parallelize(files, len(files)).flatMap(read)
        records = spark.createDataFrame(rows, schema)
    else:
        def read_content(row) -> Iterator[tuple]:
            yield from parse(row.path, _decompressed(row.path, io.BytesIO(row.content)))

        contents = (spark.read.format("binaryFile").load(files)
                    .repartition(len(files), "path").select("path", "content"))
        records = spark.createDataFrame(contents.rdd.flatMap(read_content), schema)
    return records.withColumn("_open", F.lit(False))


def _decompressed(file: str, raw: BinaryIO) -> BinaryIO:
    """A file's bytes, decompressed by its extension as Spark's text source does."""
    if file.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)
    if file.endswith(".bz2"):
        return bz2.BZ2File(raw)
    return io.BufferedReader(raw) if not isinstance(raw, io.BufferedIOBase) else raw


def _checked(records: DataFrame, lay: EdgeLayout, weighted: bool) -> DataFrame:
    """Records' fields (`_f`) -> src, dst, weight (strings parsed) and `problem` (null if fine);
    the header's fields are skipped wherever they appear; other columns are kept."""
    if lay.header is not None:
        records = records.where(F.col("_f") != F.array(*[F.lit(n) for n in lay.header]))
    n = F.size("_f")
    src = F.get(F.col("_f"), lay.src)
    dst = F.get(F.col("_f"), lay.dst)
    raw_w = F.get(F.col("_f"), lay.weight) if weighted else F.lit("1")
    weight = raw_w.try_cast("double")
    problem = (F.when(n != lay.fields, F.concat(F.lit(f"ragged row: expected {lay.fields} fields, found "),
                                              n.cast("string")))
               .when((src == "") | (dst == ""), F.lit("empty node id")))
    if weighted:
        problem = F.coalesce(problem, _weight_problem(weight, raw_w))
    kept = [c for c in records.columns if c not in ("value", "_f")]
    return records.select(*kept, src.alias("src"), dst.alias("dst"), weight.alias("weight"),
                          problem.alias("problem"))


def _first_bad_line(spark: SparkSession, file: str, lay: EdgeLayout, weighted: bool,
                    multiline: bool) -> tuple[int, str]:
    """Error path only: number the lines (or records) of one file and return the first bad one."""
    if multiline:
        records = _records(spark, file, lay.format)
    else:
        numbered = spark.sparkContext.textFile(file).zipWithIndex().map(lambda t: (t[0], t[1] + 1))
        records = _line_fields(spark.createDataFrame(numbered, "value string, line long"),
                               lay.format)
    bad = _checked(records, lay, weighted).where("problem is not null").orderBy("line").first()
    return bad["line"], bad["problem"]


@dataclass(frozen=True)
class EdgeTable:
    """Typed edges (src, dst, weight) with ids in the input's type, and what reading them found."""

    edges: DataFrame
    rows: int
    self_loops: int


def _first(summary: DataFrame, cfg: EdgeInput):
    """The summary's one row; a file Spark cannot read is named in one line."""
    try:
        return summary.first()
    except Exception as exc:  # noqa: BLE001 - anything else is not the input's fault
        unreadable = unreadable_file(exc)
        if unreadable is None:
            raise
        raise UserError("{input.path} {path}: cannot read its file {file} ({why}); remove or "
                        "replace that file", path=cfg.path, file=unreadable[0],
                        why=unreadable[1]) from None


def _summary(parsed: DataFrame, cfg: EdgeInput):
    """One pass over the parsed rows: what read_edges decides on."""
    return _first(parsed.agg(
        F.count(F.lit(1)).alias("rows"),
        F.min(F.when(F.col("problem").isNotNull(), F.col("file"))).alias("bad_file"),
        F.sum((F.col("src") == F.col("dst")).cast("long")).alias("self_loops"),
        F.sum((~F.col("src").rlike(_INTEGER) | ~F.col("dst").rlike(_INTEGER)).cast("long"))
        .alias("non_integer"),
        F.max(F.col("_open").cast("int")).alias("open")), cfg)


def read_edges(spark: SparkSession, cfg: EdgeInput, lay: EdgeLayout) -> EdgeTable:
    """Read and validate the edge table. Raises UserError naming the first bad row."""
    if lay.format == "parquet":
        return _read_parquet(spark, cfg, lay)
    lines = _line_fields(_text(spark, cfg.path).withColumn("file", F.input_file_name()),
                         lay.format)
    parsed = _checked(lines, lay, cfg.weighted)
    summary = _summary(parsed, cfg)
    multiline = bool(summary["open"])
    if multiline:  # a quoted field holds a line break: records, not lines (a second pass)
        parsed = _checked(_records(spark, cfg.path, lay.format), lay, cfg.weighted)
        summary = _summary(parsed, cfg)
    if summary["bad_file"] is not None:
        line, problem = _first_bad_line(spark, summary["bad_file"], lay, cfg.weighted, multiline)
        name = os.path.basename(urlparse(summary["bad_file"]).path)
        raise UserError("{name} line {line}: {problem}", name=name, line=line, problem=problem)
    if summary["rows"] == 0:
        raise UserError("{path}: no edges (only a header, comments or blank lines)", path=cfg.path)
    if summary["rows"] == summary["self_loops"]:
        raise UserError("{path}: no edges once self-loops are dropped (every row is a self-loop)",
                        path=cfg.path)
    id_type = "string" if summary["non_integer"] else "long"
    edges = parsed.select(F.col("src").cast(id_type).alias("src"),
                          F.col("dst").cast(id_type).alias("dst"), "weight")
    return EdgeTable(edges, summary["rows"], summary["self_loops"])


def _read_parquet(spark: SparkSession, cfg: EdgeInput, lay: EdgeLayout) -> EdgeTable:
    return edges_of_dataframe(spark.read.parquet(cfg.path), cfg, lay)


def edges_of_dataframe(df: DataFrame, cfg: EdgeInput, lay: EdgeLayout) -> EdgeTable:
    """A typed edge DataFrame (Parquet's, or one a user hands the Python API) -> checked edges;
    cfg.path names it in messages."""
    types = {f.name: f.dataType for f in df.schema.fields}
    integral = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
    src_t, dst_t = types[lay.src], types[lay.dst]
    if src_t != dst_t:  # one id type for the whole graph
        common = T.LongType() if isinstance(src_t, integral) and isinstance(dst_t, integral) \
            else T.StringType()
        src_t = dst_t = common
    weight = F.col(lay.weight).try_cast("double") if cfg.weighted else F.lit(1.0)
    edges = df.select(F.col(lay.src).cast(src_t).alias("src"), F.col(lay.dst).cast(dst_t).alias("dst"),
                      weight.alias("weight"),
                      F.col(lay.weight).alias("raw") if cfg.weighted else F.lit(None).alias("raw"))
    problem = F.when(F.col("src").isNull(), F.lit(f"null node id in column {lay.src!r}")) \
               .when(F.col("dst").isNull(), F.lit(f"null node id in column {lay.dst!r}"))
    if cfg.weighted:
        problem = F.coalesce(problem, _weight_problem(F.col("weight"), F.col("raw")))
    checked = edges.withColumn("problem", problem)
    summary = checked.agg(F.count(F.lit(1)).alias("rows"),
                          F.sum((F.col("src") == F.col("dst")).cast("long")).alias("self_loops"),
                          F.min_by(F.struct("src", "dst", "problem"),
                                   F.when(F.col("problem").isNotNull(), F.lit(0)))
                          .alias("bad"))
    summary = _first(summary, cfg)
    bad = summary["bad"]
    if bad is not None and bad["problem"] is not None:
        where = f" in column {lay.weight!r}" if "weight" in bad["problem"] else ""
        raise UserError("{path}: edge ({src}, {dst}): {problem}{where}", path=cfg.path,
                        src=bad["src"], dst=bad["dst"], problem=bad["problem"], where=where)
    if summary["rows"] == 0:
        raise UserError("{path}: no edges (the table is empty)", path=cfg.path)
    if summary["rows"] == summary["self_loops"]:
        raise UserError("{path}: no edges once self-loops are dropped (every row is a self-loop)",
                        path=cfg.path)
    return EdgeTable(checked.select("src", "dst", "weight"), summary["rows"], summary["self_loops"])


@dataclass(frozen=True)
class EdgeSource:
    """A stage's edges: a path to read (the CLI and jobs; `layout` when it was checked before
    Spark started), or a DataFrame the Python API already checked (`table`)."""

    cfg: EdgeInput
    layout: EdgeLayout | None = None
    table: EdgeTable | None = None

    def read(self, spark: SparkSession) -> EdgeTable:
        if self.table is not None:
            return self.table
        return read_edges(spark, self.cfg, self.layout or inspect_spark(spark, self.cfg))
