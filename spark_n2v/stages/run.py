"""`spark-n2v run`: edges -> DIR/walks and DIR/embeddings, and DIR/_update (update.state: what
the next `spark-n2v update` needs). A resumed run keeps the walks finished before the restart (a
resume point of its own) and trains again."""

from __future__ import annotations

import logging

from spark_n2v.record import ResumePoints
from spark_n2v.stages.stage import Context, Stage
from spark_n2v.stages.train import train_walks
from spark_n2v.stages.walk import walk_edges
from spark_n2v.update import state

log = logging.getLogger(__name__)

_RESUME_STATE = "_stages.json"


def _run(ctx: Context) -> None:
    out, record = ctx.out, ctx.record
    points = ResumePoints(ctx.spark, out.work, _RESUME_STATE)
    walked = points.find("walk")
    if walked is None:
        walk_edges(ctx.spark, ctx.edges, ctx.configs["walk"], out.sub("walks"),
                   out.work + "/walk", record, keep_edges=out.sub(state.EDGES))
        points.mark("walk", **record.walk_part())
    else:
        log.info("walk: done before the restart, kept (%s walks)",
                 f"{walked['counts']['walks']:,}")
        record.restore(walked)
    train_walks(ctx.spark, out.sub("walks"), ctx.configs["train"], out.sub("embeddings"),
                out.work + "/train", record, keep_model=out.sub(state.MODEL))


STAGE = Stage("run", "edges -> DIR/walks, DIR/embeddings and DIR/_run.json", _run,
              configs=("input", "walk", "train"))
