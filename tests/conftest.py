"""One Spark session for the whole test run, with settings for tiny graphs on 2 cores."""

from __future__ import annotations

import os
import sys

import pytest

# Python workers must import the same numpy/pyarrow as the test process.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")  # CI machines have 2 cores
        .appName("spark-n2v tests")
        .config("spark.sql.shuffle.partitions", "2")  # tiny data: 200 partitions is pure overhead
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")  # no web UI port to bind in parallel CI jobs
        .config("spark.ui.showConsoleProgress", "false")  # keep pytest's output readable
        .config("spark.driver.extraJavaOptions",  # warnings and errors only from log4j
                "-Dlog4j.configurationFile=file:"
                + os.path.join(os.path.dirname(__file__), "..", "spark_n2v", "log4j2.properties"))
        .getOrCreate()
    )
    yield session
    session.stop()
