"""The example DAG (jobs/airflow_dag.py) loads in Airflow's DagBag without import errors, runs
walk -> train -> similar as spark-submit tasks, and its rendered arguments are flags our CLI
accepts. Airflow lives in its own virtualenv (.venv-airflow, made by `make test`; Airflow and Spark
pin different libraries, as the machines that run them usually differ): without it the test is
skipped and says so."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

from spark_n2v.cli import _configs, build_parser

ROOT = pathlib.Path(__file__).resolve().parent.parent
AIRFLOW_PYTHON = os.environ.get("SPARK_N2V_AIRFLOW_PYTHON", str(ROOT / ".venv-airflow" / "bin" / "python"))


@pytest.mark.skipif(not os.path.exists(AIRFLOW_PYTHON),
                    reason=f"Airflow's virtualenv is missing ({AIRFLOW_PYTHON}): `make test` "
                           "makes it; or set SPARK_N2V_AIRFLOW_PYTHON")
def test_dag_runs_or_updates_then_finds_neighbours(tmp_path):
    # the connection as a YARN cluster's (cluster deploy mode) and the packed environment on HDFS
    archive = "hdfs://namenode:8020/apps/spark_n2v-env.tar.gz"
    connection = {"conn_type": "spark", "host": "yarn",
                  "extra": {"deploy-mode": "cluster", "queue": "nightly"}}
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "SPARK_N2V_JOBS": str(ROOT / "jobs"),
           "SPARK_N2V_ENV_ARCHIVE": archive, "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(connection)}
    result = subprocess.run([AIRFLOW_PYTHON, str(ROOT / "tests" / "airflow_dag_check.py"),
                             str(ROOT / "jobs" / "airflow_dag.py")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["import_errors"] == {}
    tasks = report["tasks"]
    assert set(tasks) == {"choose", "run", "update", "similar"}
    assert tasks["choose"]["downstream"] == ["run", "update"]
    assert tasks["choose"]["chooses"] == {"first night": "run", "after a success": "update",
                                          "forced": "run"}
    assert tasks["run"]["downstream"] == tasks["update"]["downstream"] == ["similar"]
    assert tasks["similar"]["trigger_rule"] == "none_failed_min_one_success"
    for name in ("run", "update", "similar"):
        task = tasks[name]
        assert task["operator"] == "SparkSubmitOperator"
        assert task["application"] == str(ROOT / "jobs" / f"{name}.py")
        args = build_parser().parse_args([name, *task["args"]])  # exits on an unknown flag
        _configs(args)  # and the values validate
        command = task["command"]  # spark-submit, to YARN, with the archive and its Python
        assert command[0] == "spark-submit" and command[-len(task["args"]) - 1:] == [
            task["application"], *task["args"]]
        options = _options(command[1:-len(task["args"]) - 1])
        assert options["--master"] == ["yarn"] and options["--deploy-mode"] == ["cluster"]
        assert options["--queue"] == ["nightly"] and options["--archives"] == [f"{archive}#env"]
        assert "spark.pyspark.python=./env/bin/python" in options["--conf"]
    run, update, similar = (tasks[n]["args"] for n in ("run", "update", "similar"))
    # the night's output feeds similar; an update reads the last success's and repeats run's flags
    assert run[run.index("--output") + 1] == update[update.index("--output") + 1]
    assert run[run.index("--output") + 1].endswith("/2026-11-21/run")
    assert similar[similar.index("--embeddings") + 1] == run[run.index("--output") + 1] + "/embeddings"
    assert update[update.index("--previous") + 1].endswith("/2026-11-20/run")
    assert update[2:] == run, "the same walk and train flags"


def _options(args: list[str]) -> dict[str, list[str]]:
    """spark-submit's options: --name value pairs, each name's values in order."""
    found: dict[str, list[str]] = {}
    for name, value in zip(args[::2], args[1::2]):
        assert name.startswith("--"), args
        found.setdefault(name, []).append(value)
    return found
