"""Where a sharded walk's time goes, from Spark's event log (uncompressed JSON lines).

A run started with `--conf spark.eventLog.enabled=true --conf spark.eventLog.dir=DIR
--conf spark.eventLog.compress=false` leaves one file in DIR; `summarise` reads it and reports,
per kind of stage of the walk's step jobs (jobs described "spark-n2v walk: step N of M"), the mean
over the steps of the stage's wall time and of its tasks' summed time, split into what the task
metrics separate: run time (JVM and the Python worker it waits on), shuffle write, shuffle fetch
wait, JVM GC; plus the assembly job and the time between the step jobs (driver: planning,
scheduling, the resume point's file). Stages are told apart by their order within the job: read +
shuffle, phase A (+ shuffle), phase B + Parquet write.

    .venv/bin/python bench/stage_profile.py DIR
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
from collections import defaultdict

_STEP = re.compile(r"spark-n2v walk: step (\d+) of (\d+)")
# a step job's stages in order: three when q != 1, two when q = 1 (phase A writes the step)
_KINDS = {3: ("read + shuffle", "phase A + shuffle", "phase B + write"),
          2: ("read + shuffle", "phase A + write")}
_ALL_KINDS = ("read + shuffle", "phase A + shuffle", "phase A + write", "phase B + write")


def _events(folder: str):
    for path in sorted(glob.glob(os.path.join(folder, "**", "*"), recursive=True)):
        if os.path.isfile(path) and not path.endswith(".inprogress"):
            with open(path) as handle:
                for line in handle:
                    yield json.loads(line)


def summarise(folder: str) -> dict:
    stages, tasks, jobs = {}, defaultdict(list), {}
    for event in _events(folder):
        kind = event["Event"]
        if kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            stages[info["Stage ID"]] = (info.get("Submission Time"), info.get("Completion Time"))
        elif kind == "SparkListenerTaskEnd":
            metrics = event.get("Task Metrics") or {}
            info = event["Task Info"]
            tasks[event["Stage ID"]].append({
                "task": info["Finish Time"] - info["Launch Time"],
                "run": metrics.get("Executor Run Time", 0),
                "gc": metrics.get("JVM GC Time", 0),
                "fetch wait": (metrics.get("Shuffle Read Metrics") or {}).get("Fetch Wait Time", 0),
                "shuffle write": (metrics.get("Shuffle Write Metrics") or {}).get(
                    "Shuffle Write Time", 0) / 1e6})
        elif kind == "SparkListenerJobStart":
            properties = event.get("Properties", {})
            jobs[event["Job ID"]] = {"start": event["Submission Time"],
                                     "stages": event["Stage IDs"],
                                     "what": properties.get("spark.job.description", "")}
        elif kind == "SparkListenerJobEnd":
            jobs[event["Job ID"]]["end"] = event["Completion Time"]
    per_kind = defaultdict(lambda: defaultdict(float))
    steps, step_wall, first, last, assembly = set(), 0.0, None, None, 0.0
    for job in sorted(jobs.values(), key=lambda j: j["start"]):
        match = _STEP.match(job["what"])
        ran = [s for s in sorted(job["stages"]) if s in stages]  # skipped stages never complete
        if match and len(ran) in _KINDS:  # the step's job (not its small listing jobs)
            steps.add(int(match.group(1)))
            step_wall += (job["end"] - job["start"]) / 1000
            first = job["start"] if first is None else first
            last = job["end"]
            for kind, stage in zip(_KINDS[len(ran)], ran):
                begin, end = stages[stage]
                per_kind[kind]["wall"] += (end - begin) / 1000
                for name in ("task", "run", "gc", "fetch wait", "shuffle write"):
                    per_kind[kind][name] += sum(t[name] for t in tasks[stage]) / 1000
        elif job["what"].startswith("spark-n2v walk: assemble") and "end" in job:
            assembly += (job["end"] - job["start"]) / 1000
    n = max(1, len(steps))
    return {
        "steps": len(steps),
        "step wall s": round(step_wall / n, 3),
        "between steps s": round(((last - first) / 1000 - step_wall) / n, 3) if steps else 0,
        "assembly s": round(assembly, 1),
        "stages": {kind: {name: round(value / n, 3) for name, value in values.items()}
                   for kind, values in per_kind.items()},
    }


def table(profile: dict, title: str) -> str:
    lines = [f"{title}: {profile['steps']} steps, mean step job {profile['step wall s']} s "
             f"(+ {profile['between steps s']} s between jobs), assembly {profile['assembly s']} s",
             "", "| stage (mean per step) | wall s | task s | run s | shuffle write s | "
             "fetch wait s | GC s |", "|---|---|---|---|---|---|---|"]
    for kind in _ALL_KINDS:
        if kind in profile["stages"]:
            s = profile["stages"][kind]
            lines.append(f"| {kind} | {s['wall']} | {s['task']} | {s['run']} | "
                         f"{s['shuffle write']} | {s['fetch wait']} | {s['gc']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(summarise(sys.argv[1]), sys.argv[1]))
