"""Run by tests/test_airflow.py with Airflow's Python (.venv-airflow): load the example DAG with
Airflow's DagBag and print, as JSON, its import errors and each task's operator and downstream
tasks; for the spark-submit tasks their application and arguments rendered with the default params
for one date (and a previous successful run the day before), and the spark-submit command each
would run on the `spark_default` connection; for the branch, what it chooses with
and without a previous success."""

import json
import sys
from datetime import datetime, timezone

from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
report = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "tasks": {}}
dag = bag.dags.get("spark_n2v")
if dag is not None:
    params = {k: dag.params[k] for k in dag.params}
    previous = datetime(2026, 11, 20, tzinfo=timezone.utc)
    context = {"params": params, "ds": "2026-11-21", "prev_data_interval_start_success": previous}
    for task in dag.tasks:
        entry = {"operator": type(task).__name__, "downstream": sorted(task.downstream_task_ids),
                 "trigger_rule": str(getattr(task.trigger_rule, "value", task.trigger_rule))}
        if hasattr(task, "application"):
            entry["application"] = task.application
            entry["args"] = [str(a) for a in task.render_template(task.application_args, context)]
            # the spark-submit command the task would run, on the connection the environment
            # gives (AIRFLOW_CONN_SPARK_DEFAULT), its templates rendered
            task.render_template_fields(context)
            entry["command"] = task._get_hook()._build_spark_submit_command(task.application)
        else:  # the branch: its callable with and without a previous success
            entry["chooses"] = {
                "first night": task.python_callable(params=params,
                                                    prev_data_interval_start_success=None),
                "after a success": task.python_callable(
                    params=params, prev_data_interval_start_success=previous),
                "forced": task.python_callable(params={**params, "force_run": True},
                                               prev_data_interval_start_success=previous)}
        report["tasks"][task.task_id] = entry
print(json.dumps(report))
