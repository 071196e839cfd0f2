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
def test_dag_loads_and_runs_walk_train_similar(tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "SPARK_N2V_JOBS": str(ROOT / "jobs")}
    result = subprocess.run([AIRFLOW_PYTHON, str(ROOT / "tests" / "airflow_dag_check.py"),
                             str(ROOT / "jobs" / "airflow_dag.py")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["import_errors"] == {}
    tasks = report["tasks"]
    assert set(tasks) == {"walk", "train", "similar"}
    assert tasks["walk"]["downstream"] == ["train"]
    assert tasks["train"]["downstream"] == ["similar"]
    assert tasks["similar"]["downstream"] == []
    for name, task in tasks.items():
        assert task["operator"] == "SparkSubmitOperator"
        assert task["application"] == str(ROOT / "jobs" / f"{name}.py")
        args = build_parser().parse_args([name, *task["args"]])  # exits on an unknown flag
        _configs(args)  # and the values validate
    # one run's tables feed the next
    walk, train, similar = (tasks[n]["args"] for n in ("walk", "train", "similar"))
    assert walk[walk.index("--output") + 1] == train[train.index("--walks") + 1]
    assert train[train.index("--output") + 1] == similar[similar.index("--embeddings") + 1]
    assert "2026-11-21" in walk[walk.index("--output") + 1]
