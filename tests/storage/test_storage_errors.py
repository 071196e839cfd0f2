"""Storage that cannot be reached, read or written: one line naming the path and the cause,
within a minute (Hadoop's clients retry for many minutes by default), exit 2, nothing written.
Against the real services: a missing bucket, a missing HDFS folder, refused credentials, an
endpoint where nothing listens, one that accepts connections and never answers, and an HDFS
folder the run's user may not write to."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from spark_n2v.io.files import HadoopFiles
from tests.helpers import QUICK_JVM_ENV, fails, write_csv

WALK = ["--walk-length", "3", "--num-walks", "1"]
MINUTE = 60.0  # the promise; the checks are bounded at about half of it


@pytest.fixture()
def edges(tmp_path) -> str:
    return write_csv(tmp_path / "e.csv", [("a", "b", 1), ("b", "c", 1), ("c", "a", 1)])


def _fails_soon(capsys, argv, *expected) -> str:
    started = time.monotonic()
    line = fails(capsys, argv, *expected)
    assert time.monotonic() - started < MINUTE, line
    return line


@pytest.fixture()
def bucket_setting(spark):
    """set(bucket, key, value): an S3A per-bucket setting on the session, for this test only."""
    conf, keys = spark.sparkContext._jsc.hadoopConfiguration(), []

    def put(bucket: str, key: str, value: str) -> None:
        keys.append(f"fs.s3a.bucket.{bucket}.{key}")
        conf.set(keys[-1], value)
    yield put
    for key in keys:
        conf.unset(key)


def test_a_missing_bucket_is_named(spark, s3, capsys, edges, tmp_path):
    missing = f"s3a://no-such-bucket-{uuid.uuid4().hex[:8]}"
    _fails_soon(capsys, ["walk", "--edges", f"{missing}/e.csv", "--output",
                         str(tmp_path / "w"), *WALK], "--edges", missing, "no such bucket")
    _fails_soon(capsys, ["walk", "--edges", edges, "--output", f"{missing}/w", *WALK],
                "--output", missing, "no such bucket")


def test_the_api_names_a_missing_bucket_in_its_own_terms(spark, s3):
    from spark_n2v import api
    from spark_n2v.errors import UserError
    missing = f"s3a://no-such-bucket-{uuid.uuid4().hex[:8]}"
    edges = spark.createDataFrame([("a", "b"), ("b", "c")], ["src", "dst"])
    started = time.monotonic()
    with pytest.raises(UserError) as raised:
        api.walk(edges, f"{missing}/w")
    assert time.monotonic() - started < MINUTE
    line = str(raised.value)
    assert line.startswith(f"output {missing}/w: cannot write there (no such bucket")
    assert "--" not in line


def test_a_missing_hdfs_input_is_named(spark, hdfs, capsys, tmp_path):
    missing = f"{hdfs.uri}/nothing-{uuid.uuid4().hex[:8]}/e.csv"
    _fails_soon(capsys, ["walk", "--edges", missing, "--output", str(tmp_path / "w"), *WALK],
                "--edges", missing, "no such file or folder")


def test_refused_credentials_are_named_and_not_printed(spark, s3, capsys, edges,
                                                       bucket_setting):
    bucket_setting(s3.bucket, "secret.key", "wrong-secret-4242")
    output = s3.url(f"refused-{uuid.uuid4().hex[:8]}")
    line = _fails_soon(capsys, ["walk", "--edges", edges, "--output", output, *WALK],
                       "--output", output, "access denied")
    assert "wrong-secret-4242" not in line


def test_no_permission_to_write_on_hdfs_is_named(spark, hdfs, edges):
    """The tests run as HDFS's superuser, who may write anywhere, and a JVM's Hadoop user is fixed
    once it has one: so the run is a process of its own, as another user (HADOOP_USER_NAME)."""
    folder = f"{hdfs.uri}/theirs-{uuid.uuid4().hex[:8]}"
    files = HadoopFiles(spark, folder)
    assert files.fs.mkdirs(files.path(folder))  # the superuser's, rwxr-xr-x
    output = f"{folder}/w"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "spark_n2v.cli", "walk", "--edges", edges, "--output", output,
         *WALK, "--master", "local[1]", "--conf", "spark.ui.enabled=false"],
        capture_output=True, text=True, timeout=300,
        env={**QUICK_JVM_ENV, "HADOOP_USER_NAME": "someone-else"})
    assert time.monotonic() - started < MINUTE
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert lines == [lines[-1]], done.stderr  # the one line, no trace
    for fragment in ("--output", output, "permission denied"):
        assert fragment in lines[-1], lines[-1]
    assert files.exists(folder) and files.names(folder) == []  # nothing written


def test_an_endpoint_where_nothing_listens_is_named(spark, capsys, edges, bucket_setting,
                                                     tmp_path):
    with socket.socket() as closed:  # a port nothing listens on, once closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    bucket = f"nobody-{uuid.uuid4().hex[:8]}"
    bucket_setting(bucket, "endpoint", f"http://127.0.0.1:{port}")
    _fails_soon(capsys, ["walk", "--edges", edges, "--output", f"s3a://{bucket}/w", *WALK],
                f"s3a://{bucket}/w", "connection refused")
    _fails_soon(capsys, ["walk", "--edges", f"hdfs://127.0.0.1:{port}/e.csv", "--output",
                         str(tmp_path / "w"), *WALK], f"hdfs://127.0.0.1:{port}/e.csv",
                "connection refused")


def test_an_endpoint_that_never_answers_is_given_up_within_a_minute(spark, capsys, edges,
                                                                    bucket_setting):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_say_nothing():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_and_say_nothing, daemon=True)
    thread.start()
    try:
        bucket = f"silent-{uuid.uuid4().hex[:8]}"
        bucket_setting(bucket, "endpoint", f"http://127.0.0.1:{server.getsockname()[1]}")
        _fails_soon(capsys, ["walk", "--edges", edges, "--output", f"s3a://{bucket}/w", *WALK],
                    f"s3a://{bucket}/w", "no answer in time")
        assert held  # it did connect
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()
