"""The SparkSession: the one given by spark-submit, an active one, or a local one we start, and how
much of Spark's own output reaches the terminal.

Quiet by default: Spark logs its errors only, and the notices the JVM prints on its own (Spark 4
starts every JVM with an incubator module) are held back, so that the terminal shows spark-n2v's
progress and summary, and a bad input's one-line error is the last line. `verbose` shows Spark's
log from INFO up, as spark-submit prints it, and everything the JVM prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import IO

from pyspark import SparkConf, SparkContext
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

from spark_n2v.config import SparkConfig

# Settings for the CLI's own local session. Under spark-submit the cluster's settings rule.
LOCAL_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",   # progress bars garble the CLI's own output
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "4g",
}
# Lines the JVM prints on its own (not through log4j), held back unless verbose: Spark 4 starts
# every JVM with an incubator module; MLlib says once that it computes with its Java BLAS.
_JVM_NOTICES = ("WARNING: Using incubator modules", "netlib-blas: JNI_OnLoad")


def under_spark_submit() -> bool:
    """spark-submit starts the Python driver with a JVM gateway already open."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_session(cfg: SparkConfig, app_name: str) -> tuple[SparkSession, bool]:
    """Returns (session, owned): owned sessions are stopped by the caller when done."""
    active = SparkSession.getActiveSession()
    if active is not None:  # a notebook's or a test's: its logging is its owner's
        return active, False
    if under_spark_submit():
        builder = SparkSession.builder.appName(app_name)
        for key, value in cfg.conf:
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
        f"-Dlog4j.configurationFile=file:{log_conf} -Dspark_n2v.log.level={level}")
    for key, value in [*LOCAL_DEFAULTS.items(), *cfg.conf]:  # the user's settings win
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
