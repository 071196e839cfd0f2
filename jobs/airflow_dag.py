"""An example Airflow 3 DAG: walk -> train -> similar, each a spark-submit of our job files.

Copy this file into the DAG folder and set its `JOBS` (where jobs/ lives on the Airflow worker) and
the `spark_default` connection (master, deploy mode, queue). Paths and parameters are DAG params,
so a manual trigger can change them; a scheduled run writes under ROOT/<logical date>/.

Every task passes --overwrite: an Airflow retry of a task that died midway reruns the same command,
which resumes the unfinished work beside the output (see README, "Resume after a crash") instead
of starting over; a retry with other params starts afresh.

Only Airflow is imported at the top level (DAG files are parsed often): no Spark, no numpy.
Needs apache-airflow>=3 and apache-airflow-providers-apache-spark (pip install 'spark-n2v[airflow]').
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param

JOBS = os.environ.get("SPARK_N2V_JOBS", os.path.dirname(os.path.abspath(__file__)))
RUN = "{{ params.root }}/{{ ds }}"  # this run's folder

with DAG(
    dag_id="spark_n2v",
    description="node2vec embeddings and nearest neighbours of an edge table",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # runs share nothing, but one graph-sized job at a time is kinder to a cluster
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "edges": Param("hdfs:///data/graph/edges.parquet", type="string",
                       description="edge table (Parquet, CSV/TSV or SNAP edge list)"),
        "root": Param("hdfs:///n2v", type="string", description="outputs go to ROOT/<date>/"),
        "py_files": Param("hdfs:///apps/spark_n2v-0.1.0.zip", type="string",
                          description="the --py-files zip from `make dist`"),
        "p": Param(1.0, type="number", description="return parameter"),
        "q": Param(1.0, type="number", description="in-out parameter"),
        "num_walks": Param(10, type="integer", minimum=1),
        "walk_length": Param(80, type="integer", minimum=2),
        "dim": Param(128, type="integer", minimum=1),
        "epochs": Param(1, type="integer", minimum=1),
        "top_k": Param(10, type="integer", minimum=1),
        "seed": Param(42, type="integer"),
    },
    tags=["spark-n2v"],
) as dag:

    def submit(job: str, *args: str) -> SparkSubmitOperator:
        return SparkSubmitOperator(
            task_id=job, application=f"{JOBS}/{job}.py", name=f"spark-n2v {job} {{{{ ds }}}}",
            conn_id="spark_default", py_files="{{ params.py_files }}",
            application_args=[*args, "--overwrite"])

    walk = submit("walk", "--edges", "{{ params.edges }}", "--output", f"{RUN}/walks",
                  "--p", "{{ params.p }}", "--q", "{{ params.q }}",
                  "--num-walks", "{{ params.num_walks }}", "--walk-length", "{{ params.walk_length }}",
                  "--seed", "{{ params.seed }}")
    train = submit("train", "--walks", f"{RUN}/walks", "--output", f"{RUN}/embeddings",
                   "--trainer", "sgns", "--dim", "{{ params.dim }}", "--epochs", "{{ params.epochs }}",
                   "--seed", "{{ params.seed }}")
    similar = submit("similar", "--embeddings", f"{RUN}/embeddings", "--output",
                     f"{RUN}/similar", "--top-k", "{{ params.top_k }}")

    walk >> train >> similar
