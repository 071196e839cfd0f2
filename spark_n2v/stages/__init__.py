"""The stages: one module per command, each with its own transforms (pure DataFrame functions,
tested on tiny frames) and the wiring that reads its inputs and writes its tables. `stage` holds
the interface; STAGES is the registry the CLI, the jobs and the API run from.

Adding a stage: a module here with its STAGE, its line below, and its thin job in jobs/.
"""

from spark_n2v.stages import (classify, export, linkpred, plot, run, similar, train, tune, update,
                              walk)
from spark_n2v.stages.stage import Stage

STAGES: dict[str, Stage] = {s.name: s for s in (
    walk.STAGE, train.STAGE, run.STAGE, update.STAGE, similar.STAGE, classify.STAGE, export.STAGE,
    plot.STAGE, linkpred.STAGE, tune.STAGE)}
