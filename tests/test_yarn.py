"""spark-submit --master yarn against Hadoop's mini YARN on loopback (a ResourceManager and a
NodeManager), in client and in cluster deploy mode: jobs/run.py end to end on HDFS, the project
shipped as the packed environment `make env-archive` builds (--archives ...#env,
spark.pyspark.python=./env/bin/python), Spark's jars once on HDFS (spark.yarn.archive) instead of
uploaded by every submission. Each run writes the walks and embeddings of the same run in local
mode, bit for bit. `make test-yarn` runs it (it builds the packed environment first)."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import time
import zipfile

import numpy as np
import pyspark
import pytest

from spark_n2v.cli import main
from spark_n2v.io.files import HadoopFiles
from spark_n2v.services import die_with_parent
from tests.helpers import QUICK_JVM, planted_partition, write_csv

pytestmark = pytest.mark.yarn  # minutes: `make test-yarn`, not in `make test`

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPARK_HOME = os.path.dirname(pyspark.__file__)
RUN = ["--trainer", "sgns", "--engine", "replicated", "--dim", "8", "--walk-length", "10",
       "--num-walks", "2", "--window", "3", "--epochs", "1", "--partitions", "2", "--seed", "3"]


def _env_archive() -> str:
    with open(os.path.join(ROOT, "pyproject.toml")) as handle:
        version = next(line.split('"')[1] for line in handle if line.startswith("version = "))
    path = os.path.join(ROOT, "packed", f"spark_n2v-{version}-env.tar.gz")
    if not os.path.isfile(path):
        pytest.fail(f"no packed environment at {path}: run `make test-yarn` (it builds it)")
    return path


@pytest.fixture(scope="module")
def cluster_files(spark, hdfs, tmp_path_factory) -> dict[str, str]:
    """On HDFS, as a YARN cluster keeps them for every submission: the packed environment, Spark's
    jars as one uncompressed zip (spark.yarn.archive), and the run's edges."""
    tmp = tmp_path_factory.mktemp("yarn-files")
    jars = str(tmp / "spark-jars.zip")
    with zipfile.ZipFile(jars, "w", zipfile.ZIP_STORED) as archive:
        for jar in sorted(glob.glob(os.path.join(SPARK_HOME, "jars", "*.jar"))):
            archive.write(jar, os.path.basename(jar))
    edges = write_csv(tmp / "edges.csv", planted_partition()[0])
    files = HadoopFiles(spark, hdfs.uri)
    found = {"env": f"{hdfs.uri}/apps/env.tar.gz", "jars": f"{hdfs.uri}/apps/spark-jars.zip",
             "edges": f"{hdfs.uri}/data/edges.csv", "local edges": edges,
             "numba cache": str(tmp / "numba-cache")}
    for source, target in [(_env_archive(), found["env"]), (jars, found["jars"]),
                           (edges, found["edges"])]:
        files.copy(f"file:{source}", target)
    return found


@pytest.fixture(scope="module")
def local_run(cluster_files, tmp_path_factory) -> str:
    output = str(tmp_path_factory.mktemp("yarn-local") / "run")
    assert main(["run", "--edges", cluster_files["local edges"], "--output", output, *RUN]) == 0
    return output


def _submit(yarn, files: dict[str, str], mode: str, output: str) -> tuple[float, str]:
    """jobs/run.py through spark-submit to YARN: the seconds it took, and its YARN application."""
    loopback = "127.0.0.1"  # Spark would otherwise pick the machine's outside address
    conf = {"spark.yarn.archive": files["jars"],
            "spark.pyspark.python": "./env/bin/python",  # executors (and the driver in cluster mode)
            # numba's cache on the node's disk, beside the read-only archive: compiled once
            "spark.executorEnv.NUMBA_CACHE_DIR": files["numba cache"],
            "spark.yarn.appMasterEnv.NUMBA_CACHE_DIR": files["numba cache"],
            "spark.executorEnv.SPARK_LOCAL_IP": loopback,
            "spark.yarn.appMasterEnv.SPARK_LOCAL_IP": loopback,
            "spark.driver.extraJavaOptions": QUICK_JVM, "spark.executor.extraJavaOptions": QUICK_JVM,
            "spark.yarn.am.extraJavaOptions": QUICK_JVM, "spark.ui.enabled": "false",
            "spark.yarn.maxAppAttempts": "1"}
    if mode == "client":  # the driver runs here, with this Python (spark_n2v installed)
        conf["spark.pyspark.driver.python"] = sys.executable
    command = [os.path.join(SPARK_HOME, "bin", "spark-submit"), "--master", "yarn",
               "--deploy-mode", mode, "--archives", f"{files['env']}#env",
               "--num-executors", "2", "--executor-cores", "1", "--executor-memory", "768m",
               "--driver-memory", "768m",
               *[arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")],
               os.path.join(ROOT, "jobs", "run.py"), "--edges", files["edges"],
               "--output", output, *RUN]
    env = {**os.environ, "HADOOP_CONF_DIR": yarn.conf_dir, "SPARK_HOME": SPARK_HOME,
           "SPARK_LOCAL_IP": loopback}
    env.pop("PYSPARK_PYTHON", None)
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900,
                            preexec_fn=die_with_parent)  # a client-mode driver dies with us
    seconds = time.monotonic() - started
    assert result.returncode == 0, (result.stderr[-4000:], _container_logs(yarn))
    submitted = re.findall(r"Submitted application (application_\w+)", result.stderr)
    assert len(submitted) == 1, result.stderr[-4000:]
    return seconds, submitted[0]


def _container_logs(yarn) -> str:
    """The last lines of every container's stderr (the NodeManager's log folders)."""
    tails = []
    for path in sorted(glob.glob(os.path.join(os.path.dirname(yarn.log), "**", "container_*",
                                              "stderr"), recursive=True)):
        with open(path, errors="replace") as handle:
            tails.append(f"--- {path}\n{handle.read()[-1500:]}")
    return "\n".join(tails[-4:])


def _final_report(yarn, application: str, timeout: float = 120) -> dict:
    """The ResourceManager's report of the application once it ended (in client mode
    spark-submit returns before the ApplicationMaster has unregistered)."""
    deadline = time.monotonic() + timeout
    while True:
        report = {app["id"]: app for app in yarn.applications()}[application]
        if report["state"] in ("FINISHED", "FAILED", "KILLED") or time.monotonic() > deadline:
            assert report["state"] == "FINISHED", report
            return report
        time.sleep(1)


def _rows(spark, path: str, key: str) -> dict:
    return {r[key]: r.asDict() for r in spark.read.parquet(path).collect()}


@pytest.mark.parametrize("mode", ["client", "cluster"])
def test_run_submitted_to_yarn_writes_the_tables_of_a_local_run(spark, yarn, hdfs, cluster_files,
                                                                local_run, mode):
    output = f"{hdfs.uri}/yarn-{mode}/run"
    seconds, application = _submit(yarn, cluster_files, mode, output)
    print(f"yarn {mode} mode: {seconds:.1f} s")
    assert _final_report(yarn, application)["finalStatus"] == "SUCCEEDED"
    assert _rows(spark, f"{output}/walks", "walk_id") == _rows(spark, f"{local_run}/walks",
                                                               "walk_id")
    found = _rows(spark, f"{output}/embeddings", "id")
    expected = _rows(spark, f"{local_run}/embeddings", "id")
    assert found.keys() == expected.keys() and len(found) > 100
    assert all(np.array_equal(found[k]["embedding"], expected[k]["embedding"]) for k in found)
