"""Storage benchmark: S3 requests of a walk and a training whose output is on S3, with their
resumable scratch beside the output (on S3) or on HDFS (`--work-dir`).

Starts Hadoop's mini HDFS and the S3 server the tests use (s3proxy, `make jars`), on loopback, and
counts the requests S3A makes (its IOStatistics: one Spark session in local mode, so the driver's
and the tasks' requests go through one S3A instance). Loopback seconds say little about a real
object store, where each request costs milliseconds: the counts are the figure.

    .venv/bin/python bench/storage.py [--nodes 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from run import ROOT, write_report

sys.path.insert(0, ROOT)

from graphs import planted_partition, relabel, write  # noqa: E402

from spark_n2v.cli import main as cli  # noqa: E402
from spark_n2v.services import MiniHdfs, S3Server, jar_set  # noqa: E402

JARS = os.path.join(ROOT, ".jars")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers import what this process does
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"  # no credential lookup leaves the machine


# S3A's counters of requests, one per kind (action_http_head_request repeats
# object_metadata_request, store_io_request sums them)
KINDS = {"object_list_request": "LIST", "object_metadata_request": "HEAD",
         "action_http_get_request": "GET", "object_put_request": "PUT",
         "object_copy_requests": "COPY", "object_delete_request": "DELETE",
         "object_bulk_delete_request": "bulk DELETE"}


def _counters(spark, url: str) -> dict[str, int]:
    """S3A's request counters so far (the session's cached instance)."""
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(url)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    counters = fs.getIOStatistics().counters()
    return {KINDS[k]: int(counters.get(k) or 0) for k in KINDS}


def _measured(spark, s3: S3Server, argv: list[str]) -> dict:
    before = _counters(spark, s3.url())
    started = time.perf_counter()
    assert cli(argv) == 0, argv
    seconds = time.perf_counter() - started
    after = _counters(spark, s3.url())
    used = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    used = {k: v for k, v in used.items() if v}
    return {"seconds": round(seconds, 1), "requests": sum(used.values()), "by_kind": used}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5_000)  # requests go with steps and rounds
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="spark-n2v-bench-storage-")
    folder = os.path.join(scratch, "graph")
    src, dst, labels = relabel(*planted_partition(args.nodes, 5 * args.nodes, 20, 0.7, seed=1),
                               args.nodes, 1)
    write(folder, src, dst, labels)
    edges = os.path.join(folder, "edges.parquet")

    from pyspark.sql import SparkSession
    with MiniHdfs(JARS, os.path.join(scratch, "hdfs")) as hdfs, \
            S3Server(JARS, os.path.join(scratch, "s3")) as s3:
        builder = (SparkSession.builder.master("local[2]").appName("spark-n2v storage bench")
                   .config("spark.jars", ",".join(jar_set(JARS, "s3a")))
                   .config("spark.locality.wait", "0s").config("spark.ui.enabled", "false"))
        for key, value in s3.spark_conf().items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        walk = ["--engine", "sharded", "--walk-length", "40", "--num-walks", "2", "--seed", "2"]
        train = ["--trainer", "sgns", "--dim", "32", "--epochs", "1", "--partitions", "4",
                 "--seed", "1"]
        rows = []
        for k, (mode, work) in enumerate([("beside the output (S3)", None),
                                          ("--work-dir on HDFS", f"{hdfs.uri}/scratch")]):
            extra = [] if work is None else ["--work-dir", work]
            walks, embeddings = s3.url(f"walks-{k}"), s3.url(f"embeddings-{k}")
            rows.append({"stage": "walk", "scratch": mode, **_measured(
                spark, s3, ["walk", "--edges", edges, "--output", walks, *walk, *extra])})
            rows.append({"stage": "train", "scratch": mode, **_measured(
                spark, s3, ["train", "--walks", walks, "--output", embeddings, *train, *extra])})
        spark.stop()

    lines = ["| stage | scratch | S3 requests | seconds (loopback) | by kind |",
             "|---|---|---|---|---|"]
    for r in rows:
        kinds = ", ".join(f"{k} {r['by_kind'][k]:,}" for k in KINDS.values() if k in r["by_kind"])
        lines.append(f"| {r['stage']} | {r['scratch']} | {r['requests']:,} | {r['seconds']} | "
                     f"{kinds} |")
    report = "\n".join(lines)
    print(report)
    write_report("storage", "Storage benchmark", report, rows,
                 notes=f"Planted partition, {args.nodes:,} nodes, {5 * args.nodes:,} edges; walk: "
                       "sharded engine, 2 walks of 40; train: sgns, d = 32, 1 epoch, P = 4. "
                       "Output on s3proxy (loopback) through S3A; requests from S3A's "
                       "IOStatistics.\n\n")


if __name__ == "__main__":
    main()
