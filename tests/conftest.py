"""One Spark session for the whole test run, with settings for tiny graphs on 2 cores, and the
storage services (HDFS, S3) the storage tests start once per session."""

from __future__ import annotations

import os
import sys
import uuid

import pytest

from spark_n2v.services import MiniHdfs, MiniYarn, S3Server, free_port, jar_set

# Python workers must import the same numpy/pyarrow as the test process.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
# No credential lookup may leave the machine (the AWS SDK asks a cloud metadata address).
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

JARS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".jars")
S3_PORT = free_port()  # chosen now: the session's S3A settings name it before the server starts


@pytest.fixture(scope="session")
def s3_jars() -> list[str]:
    """hadoop-aws and the AWS SDK (`make jars`), which the session has on its classpath."""
    found = jar_set(JARS, "s3a")
    if not found:
        pytest.fail(f"no S3A jars in {JARS}/s3a: run `make jars` (make test does)")
    return found


@pytest.fixture(scope="session")
def hdfs(tmp_path_factory):
    """Hadoop's mini HDFS on loopback, for the session."""
    with MiniHdfs(JARS, str(tmp_path_factory.mktemp("hdfs"))) as service:
        yield service


@pytest.fixture(scope="session")
def yarn(hdfs, tmp_path_factory):
    """Hadoop's mini YARN on loopback, its default file system the session's HDFS."""
    with MiniYarn(JARS, str(tmp_path_factory.mktemp("yarn")), hdfs.uri) as service:
        yield service


@pytest.fixture(scope="session")
def s3(s3_jars, tmp_path_factory):
    """An S3 server on loopback (the port the session's S3A settings name), for the session."""
    with S3Server(JARS, str(tmp_path_factory.mktemp("s3")), port=S3_PORT) as service:
        yield service


@pytest.fixture
def remote(request):
    """remote(storage) -> a new folder's URI on "hdfs" or "s3" (that service starts once a
    session, when a test first asks for it)."""
    def folder(storage: str) -> str:
        name = f"t-{uuid.uuid4().hex[:10]}"
        if storage == "hdfs":
            return f"{request.getfixturevalue('hdfs').uri}/{name}"
        return request.getfixturevalue("s3").url(name)
    return folder


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    # S3A reaches the session's S3 server (the s3 fixture starts it when a test asks for it)
    s3_conf = S3Server.settings(S3_PORT) if jar_set(JARS, "s3a") else {}
    builder = (
        SparkSession.builder.master("local[2]")  # CI machines have 2 cores
        .appName("spark-n2v tests")
        .config("spark.sql.shuffle.partitions", "2")  # tiny data: 200 partitions is pure overhead
        .config("spark.default.parallelism", "2")
        .config("spark.locality.wait", "0s")  # as session.LOCAL_DEFAULTS: no hang on HDFS hosts
        .config("spark.ui.enabled", "false")  # no web UI port to bind in parallel CI jobs
        .config("spark.ui.showConsoleProgress", "false")  # keep pytest's output readable
        .config("spark.driver.extraJavaOptions",  # warnings and errors only from log4j
                "-Dlog4j.configurationFile=file:"
                + os.path.join(os.path.dirname(__file__), "..", "spark_n2v", "log4j2.properties"))
    )
    for key, value in s3_conf.items():
        builder = builder.config(key, value)
    if s3_conf:
        builder = builder.config("spark.jars", ",".join(jar_set(JARS, "s3a")))
    session = builder.getOrCreate()
    yield session
    session.stop()
