"""Run by tests/test_airflow.py with Airflow's Python (.venv-airflow): load the example DAG with
Airflow's DagBag and print, as JSON, its import errors and each task's operator, downstream tasks,
application and arguments rendered with the default params for one date."""

import json
import sys

from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
report = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "tasks": {}}
dag = bag.dags.get("spark_n2v")
if dag is not None:
    context = {"params": {k: dag.params[k] for k in dag.params}, "ds": "2026-11-21"}
    for task in dag.tasks:
        report["tasks"][task.task_id] = {
            "operator": type(task).__name__, "downstream": sorted(task.downstream_task_ids),
            "application": task.application,
            "args": [str(a) for a in task.render_template(task.application_args, context)]}
print(json.dumps(report))
