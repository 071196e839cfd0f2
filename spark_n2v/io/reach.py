"""Storage checks before a run's first job: every input exists and the output's place takes a
file, or one line saying which path fails and why, within a minute.

Hadoop's clients retry for minutes by default (S3A: the SDK's retries inside its own, HDFS: ten
connection attempts and forty-five more on timeouts), and a run would meet an unreachable
endpoint only deep in its first job. So the checks use a fresh FileSystem instance (not the
cached one, which keeps the user's settings for the run itself) with few retries and short
timeouts. Nothing is left behind: the output check writes a probe file beside the output and
deletes it."""

from __future__ import annotations

import uuid

from pyspark.sql import SparkSession

from spark_n2v.errors import UserError
from spark_n2v.io.files import is_local

# A few seconds a try, two tries: under a minute even when an endpoint accepts connections and
# never answers. Settings of other file systems are ignored by them.
BOUNDED = {
    "fs.s3a.attempts.maximum": "1",              # the AWS SDK's own retries
    "fs.s3a.retry.limit": "1",                   # S3A's retries around them
    "fs.s3a.retry.interval": "500ms",
    "fs.s3a.connection.establish.timeout": "5000",
    "fs.s3a.connection.timeout": "5000",         # socket reads
    "fs.s3a.connection.request.timeout": "10000",
    "ipc.client.connect.max.retries": "1",
    "ipc.client.connect.max.retries.on.timeouts": "1",
    "ipc.client.connect.timeout": "5000",
    "ipc.client.rpc-timeout.ms": "10000",
    "dfs.client.retry.policy.enabled": "false",
}

# Java exception (simple name, or a cause's) -> what the line says
_CAUSES = (
    ("UnknownStoreException", "no such bucket"),
    ("NoSuchBucket", "no such bucket"),
    ("AccessDeniedException", "access denied: check the credentials and the permissions"),
    ("AccessControlException", "permission denied"),
    ("UnknownHostException", "unknown host"),
    ("ConnectException", "connection refused"),
    ("SocketTimeoutException", "no answer in time"),
    ("ApiCallTimeoutException", "no answer in time"),
    ("ApiCallAttemptTimeoutException", "no answer in time"),
    ("ConnectTimeoutException", "no answer in time"),
    ("FileNotFoundException", "no such file or folder"),
)


def check_storage(spark: SparkSession, inputs: dict[str, str], output: str,
                  work_dir: str | None = None) -> None:
    """Raise UserError naming the first input (flag -> path), the output or the work folder
    that cannot be reached, read or written, and why. Local paths are checked elsewhere (before
    Spark)."""
    conf = spark._jvm.org.apache.hadoop.conf.Configuration(
        spark.sparkContext._jsc.hadoopConfiguration())
    for key, value in BOUNDED.items():
        conf.set(key, value)
    for flag, path in inputs.items():
        if not is_local(path):
            _check(spark, conf, path, flag, writing=False)
    if not is_local(output):
        _check(spark, conf, output, "--output", writing=True)
    if work_dir is not None and not is_local(work_dir):
        _check(spark, conf, work_dir, "--work-dir", writing=True)


def _check(spark: SparkSession, conf, path: str, flag: str, writing: bool) -> None:
    jvm = spark._jvm
    target = jvm.org.apache.hadoop.fs.Path(path)
    fs = None
    try:
        fs = jvm.org.apache.hadoop.fs.FileSystem.newInstance(target.toUri(), conf)
        if writing:
            parent = target.getParent() or target
            probe = jvm.org.apache.hadoop.fs.Path(
                parent, f".{target.getName()}.probe-{uuid.uuid4().hex[:8]}")
            fs.create(probe, True).close()
            fs.delete(probe, False)
        else:
            fs.getFileStatus(target)
    except Exception as exc:  # noqa: BLE001 - Py4JJavaError: named by its Java exception
        raise UserError("{" + flag.lstrip("-") + "} {path}: cannot " + ("write there"
                        if writing else "read it") + " ({cause}); check the path and the "
                        "storage's settings (spark.hadoop.*)", path=path,
                        cause=cause(exc)) from None
    finally:
        if fs is not None:
            fs.close()


def cause(exc: BaseException) -> str:
    """What a storage error comes down to, from its Java exception and its causes."""
    java = getattr(exc, "java_exception", None)
    chain, seen = [], 0
    while java is not None and seen < 10:
        chain.append((str(java.getClass().getSimpleName()), str(java.getMessage() or "")))
        java, seen = java.getCause(), seen + 1
    for name, said in _CAUSES:
        for found, message in chain:
            if name in found or name in message:
                return said
    if chain:
        name, message = chain[-1]
        return f"{name}: {message.splitlines()[0][:200]}" if message else name
    return str(exc).splitlines()[0][:200]
