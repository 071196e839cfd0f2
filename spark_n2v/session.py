"""The SparkSession: the one given by spark-submit, an active one, or a local one we start."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from spark_n2v.config import SparkConfig

# Settings for the CLI's own local session. Under spark-submit the cluster's settings rule.
LOCAL_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",   # progress bars garble the CLI's own output
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "4g",
}


def under_spark_submit() -> bool:
    """spark-submit starts the Python driver with a JVM gateway already open."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_session(cfg: SparkConfig, app_name: str) -> tuple[SparkSession, bool]:
    """Returns (session, owned): owned sessions are stopped by the caller when done."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    builder = SparkSession.builder.appName(app_name)
    if not under_spark_submit():
        # Python workers must see the same packages (numpy, pyarrow) as this driver.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(cfg.master)
        log_conf = os.path.join(os.path.dirname(__file__), "log4j2.properties")
        builder = builder.config("spark.driver.extraJavaOptions",
                                 f"-Dlog4j.configurationFile=file:{log_conf}")
        for key, value in LOCAL_DEFAULTS.items():
            builder = builder.config(key, value)
    for key, value in cfg.conf:
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    return spark, not under_spark_submit()
