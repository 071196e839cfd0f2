"""The SparkSession: the one given by spark-submit, an active one, or a local one we start, and how
much of Spark's own output reaches the terminal.

Quiet by default: Spark logs its errors only, and the notices the JVM prints on its own (Spark 4
starts every JVM with an incubator module) are held back, so that the terminal shows spark-n2v's
progress and summary, and a bad input's one-line error is the last line. `verbose` shows Spark's
log from INFO up, as spark-submit prints it, and everything the JVM prints.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from typing import IO

from pyspark import SparkConf, SparkContext
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

from spark_n2v.config import SparkConfig
from spark_n2v.io.files import is_local, local_path

# Settings for the CLI's own local session. Under spark-submit the cluster's settings rule.
LOCAL_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",   # progress bars garble the CLI's own output
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "4g",
    # One executor: locality buys nothing, and a stage mixing tasks that prefer it with tasks that
    # prefer a storage host (HDFS blocks) left its last tasks unscheduled for good (the sharded
    # engine's assembly over step files on HDFS, 2026-12-07): no delay scheduling in local mode.
    "spark.locality.wait": "0s",
}
# Lines the JVM prints on its own (not through log4j), held back unless verbose: Spark 4 starts
# every JVM with an incubator module; MLlib says once that it computes with its Java BLAS.
_JVM_NOTICES = ("WARNING: Using incubator modules", "netlib-blas: JNI_OnLoad")


def under_spark_submit() -> bool:
    """spark-submit starts the Python driver with a JVM gateway already open."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def settings(cfg: SparkConfig) -> list[tuple[str, str]]:
    """The Spark settings the user asked for: --conf, and --event-log's."""
    if cfg.event_log is None:
        return list(cfg.conf)
    if is_local(cfg.event_log):  # Spark refuses a missing event-log folder
        os.makedirs(local_path(cfg.event_log), exist_ok=True)
    return [("spark.eventLog.enabled", "true"), ("spark.eventLog.dir", cfg.event_log), *cfg.conf]


def get_session(cfg: SparkConfig, app_name: str) -> tuple[SparkSession, bool]:
    """Returns (session, owned): owned sessions are stopped by the caller when done."""
    active = SparkSession.getActiveSession()
    if active is not None:  # a notebook's or a test's: its logging is its owner's
        return active, False
    if under_spark_submit():
        builder = SparkSession.builder.appName(app_name)
        for key, value in settings(cfg):
            builder = builder.config(key, value)
        spark, owned = builder.getOrCreate(), False
    else:
        spark, owned = _local_session(app_name, cfg), True
    if not cfg.verbose:  # under spark-submit too: its shutdown lines would follow our error
        spark.sparkContext.setLogLevel("ERROR")
    return spark, owned


def _local_session(app_name: str, cfg: SparkConfig) -> SparkSession:
    # Python workers must see the same packages (numpy, pyarrow) as this driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    log_conf = os.path.join(os.path.dirname(__file__), "log4j2.properties")
    level = "info" if cfg.verbose else "error"
    conf = SparkConf().setAppName(app_name).setMaster(cfg.master).set(
        "spark.driver.extraJavaOptions",
        " ".join([f"-Dlog4j.configurationFile=file:{log_conf}", f"-Dspark_n2v.log.level={level}",
                  *_archive_options()]))
    for key, value in [*LOCAL_DEFAULTS.items(), *settings(cfg)]:  # the user's settings win
        conf.set(key, value)
    # The JVM's stderr through a filter (pyspark's hook for capturing it), unless this process
    # already has its JVM (a second command in one process: the first one's is reused).
    if not cfg.verbose and SparkContext._gateway is None:
        gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.PIPE})
        _forward(gateway.proc.stderr, sys.stderr)
        SparkContext(conf=conf, gateway=gateway)  # the context every session then shares
    return SparkSession.builder.config(conf=conf).getOrCreate()


def _forward(source: IO[bytes], target: IO[str]) -> None:
    """Copy the JVM's stderr to ours, line by line, without its start-up notices."""

    def copy() -> None:
        for raw in iter(source.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            if not line.startswith(_JVM_NOTICES):
                target.write(line)
                target.flush()

    threading.Thread(target=copy, name="spark-n2v JVM stderr", daemon=True).start()


# --- the JVM's class-data archive ------------------------------------------------------------------
# A local run's JVM spends seconds loading Spark's classes from its jars before the first job:
# measured on 2 cores (2026-12-02), a session, one job, a Parquet aggregation and one Python job
# took 22 s, 13.6 s with a class-data archive of the classes a recorded run loaded (JDK 13+
# dynamic CDS: -XX:ArchiveClassesAtExit records, -XX:SharedArchiveFile maps). `python -m
# spark_n2v.warmup` records it (make does, once per virtualenv); runs use it when it is there.

RECORD_ARCHIVE_ENV = "SPARK_N2V_RECORD_ARCHIVE"  # set by warmup: this run records the archive
_ARCHIVE_FORMAT = 1  # bump when what is recorded changes: older archives are then ignored


def class_archive() -> str | None:
    """Where this installation's archive lives (it may not exist yet), or None when the JVM or
    Spark's jars cannot be found: in the Python environment (removed with it), or in
    $SPARK_N2V_CACHE. The name depends on the java binary and on Spark's jars, so an archive
    recorded for other ones is never used (a JVM refuses a mismatched archive, and one cut short
    crashes it: warmup renames a recorded archive into place only when it is whole)."""
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") \
        else shutil.which("java")
    try:
        from pyspark.find_spark_home import _find_spark_home
        jars = os.path.join(_find_spark_home(), "jars")
        java = os.path.realpath(java or "")
        stat = os.stat(java)
        names = sorted(os.listdir(jars))
    except (OSError, ImportError):  # no java, no jars folder: no archive
        return None
    key = hashlib.sha256(repr((_ARCHIVE_FORMAT, java, stat.st_size, stat.st_mtime_ns, jars,
                               names)).encode()).hexdigest()[:16]
    folder = os.environ.get("SPARK_N2V_CACHE") or os.path.join(sys.prefix, "share", "spark-n2v")
    return os.path.join(folder, f"jvm-classes-{key}.jsa")


def _archive_options() -> list[str]:
    recording = os.environ.get(RECORD_ARCHIVE_ENV)
    if recording:
        return [f"-XX:ArchiveClassesAtExit={recording}"]
    archive = class_archive()
    if archive is None or not os.path.isfile(archive):
        return []
    # the JVM's own notices about the archive (one it cannot use: it starts without) stay quiet
    return [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
