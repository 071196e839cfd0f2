"""Reading edge tables and writing outputs atomically.

Input is checked at the boundary: missing files and columns are found before Spark starts (for local
paths); bad rows are found in one pass over the data and reported with their line. Outputs are
written to a hidden staging folder beside the target and renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_n2v.config import EdgeInput
from spark_n2v.errors import UserError

log = logging.getLogger(__name__)

_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv",
               ".tab": "tsv", ".txt": "snap", ".edges": "snap", ".edgelist": "snap", ".el": "snap"}
_DELIMITERS = {"csv": ",", "tsv": "\t", "snap": r"\s+"}
# Integer ids are kept as longs only when they read back exactly as written ("007" stays a string).
_INTEGER = r"^-?(0|[1-9][0-9]{0,17})$"


def is_local(path: str) -> bool:
    return urlparse(path).scheme in ("", "file")


def local_path(path: str) -> str:
    return urlparse(path).path if path.startswith("file:") else path


def data_files(path: str) -> list[str]:
    """A local file, or the visible data files of a local folder, in name order."""
    path = local_path(path)
    if os.path.isfile(path):
        return [path]
    names = sorted(n for n in os.listdir(path) if not n.startswith((".", "_")))
    return [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]


def detect_format(cfg: EdgeInput) -> str:
    if cfg.format:
        return cfg.format
    path = cfg.path.rstrip("/")
    if is_local(path) and os.path.isdir(local_path(path)):
        files = data_files(path)
        path = files[0] if files else path
    suffix = os.path.splitext(path[:-3] if path.endswith(".gz") else path)[1].lower()
    if suffix not in _EXTENSIONS:
        raise UserError(f"--edges {cfg.path}: cannot tell the format from the name; pass --format "
                        f"{'|'.join(sorted(set(_EXTENSIONS.values())))}")
    return _EXTENSIONS[suffix]


@dataclass(frozen=True)
class EdgeLayout:
    """Where src, dst and weight are in a text file, or their names in a Parquet table."""

    format: str
    src: str | int
    dst: str | int
    weight: str | int | None
    fields: int | None        # text: fields every data row must have
    header_line: str | None   # text with a header: its exact line, skipped wherever it appears


def _split(line: str, fmt: str) -> list[str]:
    line = line.rstrip("\r\n")
    if fmt == "snap":
        return line.split()
    return [f.strip().strip('"') for f in line.split(_DELIMITERS[fmt])]


def _pick(flag: str, name: str, found: list[str], what: str) -> str:
    if name not in found:
        raise UserError(f"{what}: no column {name!r} ({flag}); columns found: {', '.join(found)}")
    return name


def _position(name: str, default: int) -> int:
    return int(name) if name.isdigit() else default


def layout(cfg: EdgeInput, fmt: str, head: list[str] | None, parquet_columns: list[str] | None
           ) -> EdgeLayout:
    """Check the columns against the header (text) or schema (Parquet) and say where they are.

    `head` holds the first lines of the first file (text formats).
    """
    weight_flag = "--weighted needs a weight column:"
    if fmt == "parquet":
        cols = parquet_columns or []
        src = _pick("--src-col", cfg.src_col, cols, cfg.path)
        dst = _pick("--dst-col", cfg.dst_col, cols, cfg.path)
        weight = _pick(f"{weight_flag} --weight-col", cfg.weight_col, cols, cfg.path) \
            if cfg.weighted else None
        return EdgeLayout(fmt, src, dst, weight, None, None)
    lines = [ln for ln in (head or []) if ln.strip() and not (fmt == "snap" and ln.lstrip().startswith("#"))]
    if not lines:
        raise UserError(f"{cfg.path}: no edges (the file is empty)")
    if fmt in ("csv", "tsv") and cfg.header:
        names = _split(lines[0], fmt)
        src = names.index(_pick("--src-col", cfg.src_col, names, cfg.path))
        dst = names.index(_pick("--dst-col", cfg.dst_col, names, cfg.path))
        weight = names.index(_pick(f"{weight_flag} --weight-col", cfg.weight_col, names, cfg.path)) \
            if cfg.weighted else None
        return EdgeLayout(fmt, src, dst, weight, len(names), lines[0].rstrip("\r\n"))
    fields = len(_split(lines[0], fmt))
    src, dst = _position(cfg.src_col, 0), _position(cfg.dst_col, 1)
    weight = _position(cfg.weight_col, 2) if cfg.weighted else None
    for flag, pos in (("--src-col", src), ("--dst-col", dst), (f"{weight_flag} --weight-col", weight)):
        if pos is not None and pos >= fields:
            raise UserError(f"{cfg.path}: {flag} is column {pos} (from 0) but the first row has "
                            f"{fields} fields")
    return EdgeLayout(fmt, src, dst, weight, fields, None)


def inspect_local(cfg: EdgeInput) -> EdgeLayout | None:
    """Pre-Spark checks for a local path: it exists, its format, its columns. None if remote."""
    if not is_local(cfg.path):
        return None
    if not os.path.exists(local_path(cfg.path)):
        raise UserError(f"--edges {cfg.path}: no such file or folder")
    files = data_files(cfg.path)
    if not files:
        raise UserError(f"--edges {cfg.path}: the folder holds no data files")
    fmt = detect_format(cfg)
    if fmt == "parquet":
        import pyarrow.parquet as pq
        try:
            names = pq.read_schema(files[0]).names
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
            raise UserError(f"--edges {files[0]}: not a readable Parquet file ({exc})") from None
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
        head = [r.value for r in spark.read.text(cfg.path).limit(1000).collect()]
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"--edges {cfg.path}: cannot read it ({str(exc).splitlines()[0]})") from None
    return layout(cfg, fmt, head, None)


# --- parsing and validation -------------------------------------------------------------------

def _weight_problem(weight: "F.Column", raw: "F.Column") -> "F.Column":
    shown = F.concat(F.lit("'"), raw.cast("string"), F.lit("'"))
    return (F.when(weight.isNull(), F.concat(F.lit("weight "), F.coalesce(shown, F.lit("(empty)")),
                                             F.lit(" is not a number")))
            .when(F.isnan(weight), F.lit("weight is NaN"))
            .when(F.abs(weight) == float("inf"), F.lit("weight is infinite"))
            .when(weight <= 0, F.concat(F.lit("weight "), shown, F.lit(" is not positive"))))


def _parse_text(lines: DataFrame, lay: EdgeLayout, weighted: bool) -> DataFrame:
    """Raw lines (column `value`) -> src, dst, weight (strings parsed) and `problem` (null if fine)."""
    value = F.regexp_replace("value", r"\r$", "")
    skip = F.trim(value) == ""
    if lay.format == "snap":
        skip = skip | F.ltrim(value).startswith("#")
        fields = F.split(F.trim(value), r"\s+")
    else:
        fields = F.transform(F.split(value, _DELIMITERS[lay.format], -1),
                             lambda f: F.regexp_replace(F.trim(f), r'^"(.*)"$', "$1"))
    if lay.header_line is not None:
        skip = skip | (value == lay.header_line)
    df = lines.where(~skip).select("*", fields.alias("_f"))
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
    return df.select(*[c for c in lines.columns if c != "value"], src.alias("src"),
                     dst.alias("dst"), weight.alias("weight"), problem.alias("problem"))


def _first_bad_line(spark: SparkSession, path: str, lay: EdgeLayout, weighted: bool) -> tuple[int, str]:
    """Error path only: number the lines of one file and return the first bad one."""
    numbered = spark.sparkContext.textFile(path).zipWithIndex().map(lambda t: (t[0], t[1] + 1))
    lines = spark.createDataFrame(numbered, "value string, line long")
    bad = _parse_text(lines, lay, weighted).where("problem is not null").orderBy("line").first()
    return bad["line"], bad["problem"]


@dataclass(frozen=True)
class EdgeTable:
    """Typed edges (src, dst, weight) with ids in the input's type, and what reading them found."""

    edges: DataFrame
    rows: int
    self_loops: int


def read_edges(spark: SparkSession, cfg: EdgeInput, lay: EdgeLayout) -> EdgeTable:
    """Read and validate the edge table. Raises UserError naming the first bad row."""
    if lay.format == "parquet":
        return _read_parquet(spark, cfg, lay)
    parsed = _parse_text(spark.read.text(cfg.path).withColumn("file", F.input_file_name()),
                         lay, cfg.weighted)
    summary = parsed.agg(
        F.count(F.lit(1)).alias("rows"),
        F.min(F.when(F.col("problem").isNotNull(), F.col("file"))).alias("bad_file"),
        F.sum((F.col("src") == F.col("dst")).cast("long")).alias("self_loops"),
        F.sum((~F.col("src").rlike(_INTEGER) | ~F.col("dst").rlike(_INTEGER)).cast("long"))
        .alias("non_integer")).first()
    if summary["bad_file"] is not None:
        line, problem = _first_bad_line(spark, summary["bad_file"], lay, cfg.weighted)
        name = os.path.basename(urlparse(summary["bad_file"]).path)
        raise UserError(f"{name} line {line}: {problem}")
    if summary["rows"] == 0:
        raise UserError(f"{cfg.path}: no edges (only a header, comments or blank lines)")
    if summary["rows"] == summary["self_loops"]:
        raise UserError(f"{cfg.path}: no edges once self-loops are dropped (every row is a self-loop)")
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
                          .alias("bad")).first()
    bad = summary["bad"]
    if bad is not None and bad["problem"] is not None:
        raise UserError(f"{cfg.path}: edge ({bad['src']}, {bad['dst']}): {bad['problem']}"
                        + (f" in column {lay.weight!r}" if "weight" in bad["problem"] else ""))
    if summary["rows"] == 0:
        raise UserError(f"{cfg.path}: no edges (the table is empty)")
    if summary["rows"] == summary["self_loops"]:
        raise UserError(f"{cfg.path}: no edges once self-loops are dropped (every row is a self-loop)")
    return EdgeTable(checked.select("src", "dst", "weight"), summary["rows"], summary["self_loops"])


# --- outputs ---------------------------------------------------------------------------------

def json_bytes(payload: dict) -> bytes:
    """Our JSON side files (_run.json, metrics.json, work-folder state): sorted, indented."""
    return (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode("utf-8")


class HadoopFiles:
    """Small files and folders through Hadoop's FileSystem (local disk, HDFS, object stores): the
    driver's bookkeeping beside the tables Spark writes."""

    def __init__(self, spark: SparkSession, path: str):
        self._jvm = spark.sparkContext._jvm
        self.fs = self.path(path).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        self.fs.setWriteChecksum(False)  # no .crc files beside _run.json on local disks

    def path(self, path: str):
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def qualify(self, path: str) -> str:
        """file:/abs/..., hdfs://...: Python tasks open such paths themselves, from their own cwd."""
        return str(self.fs.makeQualified(self.path(path)))

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self.path(path)))

    def delete(self, path: str) -> None:
        self.fs.delete(self.path(path), True)

    def rename(self, source: str, target: str) -> bool:
        parent = self.path(target).getParent()
        if parent is not None:
            self.fs.mkdirs(parent)
        return bool(self.fs.rename(self.path(source), self.path(target)))

    def names(self, folder: str) -> list[str]:
        """The entries of a folder, in name order (none if it does not exist)."""
        if not self.exists(folder):
            return []
        return sorted(str(f.getPath().getName()) for f in self.fs.listStatus(self.path(folder)))

    def write_bytes(self, path: str, data: bytes) -> None:
        stream = self.fs.create(self.path(path), True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def write_json(self, path: str, payload: dict) -> None:
        """Replace a JSON file so that a reader finds the old or the new one, whole: written
        beside, then renamed (read_json falls back to the beside copy if killed in between)."""
        self.write_bytes(path + ".next", json_bytes(payload))
        self.delete(path)
        self.rename(path + ".next", path)

    def read_json(self, path: str) -> dict | None:
        for candidate in (path, path + ".next"):
            if not self.exists(candidate):
                continue
            stream = self.fs.open(self.path(candidate))
            try:
                data = bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
            finally:
                stream.close()
            try:
                return json.loads(data.decode("utf-8"))
            except ValueError:  # cut short by a kill while written
                continue
        return None

    def fingerprint(self, path: str) -> dict:
        """What identifies an input's content without reading it: its visible files' names,
        sizes and modification times, hashed (and counted, for people reading _run.json)."""
        root = self.fs.makeQualified(self.path(path))
        status = self.fs.getFileStatus(root)
        files = [status] if status.isFile() else []
        if not files:
            listing = self.fs.listFiles(root, True)
            while listing.hasNext():
                files.append(listing.next())
        digest = hashlib.sha256()
        count = size = 0
        base = str(root)
        for f in sorted(files, key=lambda f: str(f.getPath())):
            name = str(f.getPath())[len(base):].lstrip("/")
            if any(part.startswith((".", "_")) for part in name.split("/") if part):
                continue  # hidden files (_SUCCESS, .crc) are not data
            count, size = count + 1, size + int(f.getLen())
            digest.update(f"{name}\t{f.getLen()}\t{f.getModificationTime()}\n".encode())
        return {"path": path, "files": count, "bytes": size, "sha256": digest.hexdigest()[:16]}


class OutputPath:
    """An output folder that appears only when complete, and work that survives a crash.

    Tables are written to a hidden staging folder beside the target (`.NAME.incomplete`) and
    `commit()` renames it into place (replacing an existing output only with overwrite). Scratch
    work (walk chunks, the sgns trainer's tables) goes to `.NAME.work`, with `_job.json`: the
    command, its parameters and its inputs' fingerprints. If a run dies (SIGKILL, lost driver),
    the same command finds both folders and resumes (`resumed`; the stages say what they keep);
    other parameters or changed inputs are refused, or with --overwrite start afresh. Both folders
    are deleted on commit. Paths go through Hadoop's FileSystem: local disks, HDFS, object stores.
    """

    def __init__(self, spark: SparkSession, path: str, overwrite: bool, job: dict):
        self.files = HadoopFiles(spark, path)
        self.target = self.files.path(path)
        self.path = path
        self.overwrite = overwrite
        check_output_free(path, overwrite, exists=self.files.exists(path))
        parent, name = self.target.getParent(), self.target.getName()
        self.staging = str(self.files.path(f"{parent}/.{name}.incomplete"))
        self.work = self.files.qualify(f"{parent}/.{name}.work")
        self.resumed = self._claim(job)

    def _claim(self, job: dict) -> bool:
        """Resume the unfinished work of the same job, else clear the folders (see the class)."""
        found = self.files.read_json(f"{self.work}/_job.json")
        if found == job:
            log.info("resuming the unfinished run in %s (same command and inputs)", self.work)
            return True
        if found is not None and not self.overwrite:
            raise UserError(f"{self.work} holds an unfinished run of {self.path} with other "
                            f"parameters or inputs ({_first_difference(found, job)}); rerun it "
                            "as it was to resume it, or pass --overwrite to start afresh")
        self.files.delete(self.staging)
        self.files.delete(self.work)
        self.files.write_json(f"{self.work}/_job.json", job)
        return False

    def sub(self, name: str) -> str:
        return f"{self.staging}/{name}"

    def write_json(self, name: str, payload: dict) -> None:
        self.files.write_bytes(self.sub(name), json_bytes(payload))

    def write_text(self, name: str, lines: DataFrame) -> None:
        """A one-column DataFrame as the single text file `name`, lines in the DataFrame's order
        (one task writes it: coalesce keeps a sort's order), without passing through the driver."""
        parts = f"{self.work}/{name}.parts"
        lines.coalesce(1).write.mode("overwrite").text(parts)
        written = [n for n in self.files.names(parts) if n.startswith("part-")]
        if len(written) != 1 or not self.files.rename(f"{parts}/{written[0]}", self.sub(name)):
            raise UserError(f"could not write {name} into {self.staging}")
        self.files.delete(parts)

    def put_file(self, local: str, name: str) -> None:
        """Copy a file made on the driver's disk (a picture) into the staging folder."""
        self.files.fs.copyFromLocalFile(False, True, self.files.path(os.path.abspath(local)),
                                        self.files.path(self.sub(name)))

    def stage_done(self, stage: str) -> dict | None:
        """What a finished stage of this run recorded (mark_stage), or None."""
        return (self.files.read_json(f"{self.work}/_stages.json") or {}).get(stage)

    def mark_stage(self, stage: str, info: dict) -> None:
        done = self.files.read_json(f"{self.work}/_stages.json") or {}
        self.files.write_json(f"{self.work}/_stages.json", {**done, stage: info})

    def commit(self) -> None:
        if self.files.exists(self.path):
            if not self.overwrite:  # appeared while we worked: leave it alone
                raise UserError(f"output {self.path} appeared during the run; pass --overwrite to "
                                f"replace it (the finished work is at {self.staging})")
            self.files.delete(self.path)
        if not self.files.rename(self.staging, self.path):
            raise UserError(f"could not move {self.staging} to {self.path}")
        self.files.delete(self.work)

    def abort(self) -> None:
        """Forget the run (input errors: nothing to resume)."""
        self.files.delete(self.work)
        self.files.delete(self.staging)


def _first_difference(old: dict, new: dict, prefix: str = "") -> str:
    """The first setting that differs between two job descriptions, for the refusal message."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = _first_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key}: {a!r} then, {b!r} now"
    return ""


def check_output_free(path: str, overwrite: bool, exists: bool | None = None) -> None:
    """An existing output is never touched without --overwrite (checked before any work)."""
    if exists is None:
        if not is_local(path):
            return  # checked again once Spark can see the file system
        exists = os.path.exists(local_path(path))
    if exists and not overwrite:
        raise UserError(f"--output {path} already exists; pass --overwrite to replace it, "
                        "or choose another path")


def read_parquet_table(spark: SparkSession, path: str, flag: str, needed: tuple[str, ...]) -> DataFrame:
    """Read one of our own tables (walks, embeddings), checking it has the columns we need."""
    if is_local(path) and not os.path.exists(local_path(path)):
        raise UserError(f"{flag} {path}: no such folder")
    try:
        df = spark.read.parquet(path)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"{flag} {path}: not a Parquet table ({str(exc).splitlines()[0]})") from None
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise UserError(f"{flag} {path}: no column {missing[0]!r}; columns found: {', '.join(df.columns)}")
    return df

