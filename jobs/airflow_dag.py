"""An example Airflow 3 DAG, nightly: embed the edge table, then its nearest neighbours.

    choose -> run | update -> similar

`choose` takes `update` when an earlier run of this DAG succeeded, else `run`: `update` reads that
run's output (ROOT/<its date>/run: walks, embeddings and _update) and the new edges, and walks and
trains again only near what changed (spark-n2v update, README "Incremental updates"); `run` embeds
the whole graph. Both write ROOT/<date>/run, whose embeddings `similar` reads. Airflow knows which
run succeeded last (`prev_data_interval_start_success`): no file system access from Airflow.
Outputs of runs older than the last success can be deleted: an update needs only the last one.

Copy this file into the DAG folder and set its `JOBS` (where jobs/ lives on the Airflow worker),
`ENV_ARCHIVE` (the packed environment `make env-archive` builds, put where the cluster reads it)
and the `spark_default` connection: master, queue, and **cluster deploy mode** (YARN: host
`yarn`, extra {"deploy-mode": "cluster"}). Every task ships that archive (`--archives
ENV_ARCHIVE#env`) and runs its Python (`spark.pyspark.python=./env/bin/python`), driver included,
so the Airflow worker needs only spark-submit and the nodes need Spark and the Python the archive
was built with, at the same path (docs/cluster.md). In client deploy mode the driver would run on
the Airflow worker, where ./env does not exist. Add `spark.yarn.archive` (Spark's jars on HDFS) to
the connection's or the cluster's Spark defaults, or every task uploads them. Paths and parameters are DAG params,
so a manual trigger can change them; the walk and train parameters must stay those of the run
that updates start from (an update refuses other ones and says which), so change them with
`force_run`, which embeds the whole graph again.

Every Spark task passes --overwrite: an Airflow retry of a task that died midway reruns the same
command, which resumes the unfinished work beside the output (see README, "Resume after a crash")
instead of starting over; a retry with other params starts afresh.

Only Airflow is imported at the top level (DAG files are parsed often): no Spark, no numpy.
Needs apache-airflow>=3 and apache-airflow-providers-apache-spark (pip install 'spark-n2v[airflow]').
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param, task

JOBS = os.environ.get("SPARK_N2V_JOBS", os.path.dirname(os.path.abspath(__file__)))
# SparkSubmitOperator does not template its archives: the archive's place is set here, not a param
ENV_ARCHIVE = os.environ.get("SPARK_N2V_ENV_ARCHIVE", "hdfs:///apps/spark_n2v-0.1.0-env.tar.gz")
SHIPPED = {"spark.pyspark.python": "./env/bin/python",  # the archive's Python, in every container
           # numba caches the compiled kernel once per container (the archive is read-only)
           "spark.executorEnv.NUMBA_CACHE_DIR": "./numba-cache",
           "spark.yarn.appMasterEnv.NUMBA_CACHE_DIR": "./numba-cache"}
RUN = "{{ params.root }}/{{ ds }}/run"  # this night's output
PREVIOUS = "{{ params.root }}/{{ prev_data_interval_start_success | ds }}/run"  # last success's

with DAG(
    dag_id="spark_n2v",
    description="node2vec embeddings and nearest neighbours of an edge table, updated nightly",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # an update starts from the previous night's output: one night at a time
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "edges": Param("hdfs:///data/graph/edges.parquet", type="string",
                       description="edge table (Parquet, CSV/TSV or SNAP edge list)"),
        "root": Param("hdfs:///n2v", type="string", description="outputs go to ROOT/<date>/"),
        "force_run": Param(False, type="boolean",
                           description="embed the whole graph even if an update could"),
        "p": Param(1.0, type="number", description="return parameter"),
        "q": Param(1.0, type="number", description="in-out parameter"),
        "num_walks": Param(10, type="integer", minimum=1),
        "walk_length": Param(80, type="integer", minimum=2),
        "dim": Param(128, type="integer", minimum=1),
        "top_k": Param(10, type="integer", minimum=1),
        "seed": Param(42, type="integer"),
    },
    tags=["spark-n2v"],
) as dag:

    def submit(job: str, *args: str, **kwargs) -> SparkSubmitOperator:
        return SparkSubmitOperator(
            task_id=job, application=f"{JOBS}/{job}.py", name=f"spark-n2v {job} {{{{ ds }}}}",
            conn_id="spark_default", archives=f"{ENV_ARCHIVE}#env", conf=SHIPPED,
            application_args=[*args, "--overwrite"], **kwargs)

    # the same walk and train flags for run and update (an update checks them against its previous)
    embed = ["--edges", "{{ params.edges }}", "--output", RUN,
             "--p", "{{ params.p }}", "--q", "{{ params.q }}", "--num-walks", "{{ params.num_walks }}",
             "--walk-length", "{{ params.walk_length }}", "--trainer", "sgns",
             "--dim", "{{ params.dim }}", "--seed", "{{ params.seed }}"]  # epochs: automatic

    @task.branch
    def choose(params=None, prev_data_interval_start_success=None) -> str:
        """update when an earlier night succeeded (its output is the previous), else run."""
        if prev_data_interval_start_success is None or params["force_run"]:
            return "run"
        return "update"

    run = submit("run", *embed)
    update = submit("update", "--previous", PREVIOUS, *embed)
    similar = submit("similar", "--embeddings", f"{RUN}/embeddings", "--output",
                     "{{ params.root }}/{{ ds }}/similar", "--top-k", "{{ params.top_k }}",
                     trigger_rule="none_failed_min_one_success")  # after whichever ran

    choose() >> [run, update] >> similar
