"""The MLlib trainer: Spark MLlib Word2Vec (skip-gram, hierarchical softmax) on the walks.

MLlib keeps the vocabulary and both weight matrices on the driver and broadcasts them each
iteration, and it refuses vocabulary x dimension >= 2^31 - 1: we check that before training so the
job stops with a message instead of an exception deep inside MLlib.
"""

from __future__ import annotations

from pyspark.ml.feature import Word2Vec
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.config import TrainConfig
from spark_n2v.errors import UserError
from spark_n2v.progress import describe
from spark_n2v.train.trainers import Trained, Trainer

# MLlib Word2Vec refuses vocabulary x dimension at or above Int.MaxValue (it would overflow its
# arrays).
MLLIB_MAX_CELLS = 2**31 - 1


class MLlibTrainer(Trainer):
    name = "mllib"

    def train(self, spark: SparkSession, walks: DataFrame, cfg: TrainConfig, work_dir: str
              ) -> Trained:
        describe(spark, "spark-n2v train: MLlib Word2Vec")
        # One pass unless asked for more: hierarchical softmax has no common direction to grow
        # out of (see sgns.auto_epochs); on thin corpora one pass already embeds well.
        epochs = cfg.epochs or 1
        return Trained(train_word2vec(walks, cfg, epochs), epochs)


def vocabulary_size(walks: DataFrame, min_count: int) -> int:
    """Distinct nodes seen at least min_count times (MLlib's vocabulary)."""
    tokens = walks.select(F.explode(C.WALK).alias("_t"))
    if min_count <= 1:
        return tokens.distinct().count()
    return tokens.groupBy("_t").count().where(F.col("count") >= min_count).count()


def check_mllib_capacity(vocabulary: int, dim: int) -> None:
    """MLlib Word2Vec needs vocabulary x dim < 2^31 - 1; say what to change when it is not."""
    if vocabulary * dim >= MLLIB_MAX_CELLS:
        raise UserError(
            "MLlib Word2Vec cannot train {nodes:,} nodes x {dim} dimensions ({cells:,} weights; "
            "its limit is 2^31 - 1): lower {train.dim} to at most {most}, or raise "
            "{train.min_count} to drop rare nodes", nodes=vocabulary, dim=dim,
            cells=vocabulary * dim, most=(MLLIB_MAX_CELLS - 1) // vocabulary)


def train_word2vec(walks: DataFrame, cfg: TrainConfig, epochs: int) -> DataFrame:
    """walks (walk_id, walk) -> embeddings (id in the walks' id type, embedding array<float>),
    trained in `epochs` passes."""
    id_type = walks.schema[C.WALK].dataType.elementType
    check_mllib_capacity(vocabulary_size(walks, cfg.min_count), cfg.dim)
    # MLlib's result depends on the order of the sentences: fix it, so that the same walks give the
    # same embeddings whichever engine (or partitioning) wrote them.
    ordered = walks.orderBy(C.WALK_ID) if C.WALK_ID in walks.columns else walks
    sentences = ordered.select(F.transform(C.WALK, lambda x: x.cast("string")).alias("_sentence"))
    model = Word2Vec(
        vectorSize=cfg.dim, windowSize=cfg.window, maxIter=epochs, minCount=cfg.min_count,
        stepSize=cfg.learning_rate, numPartitions=cfg.partitions or 1, seed=cfg.seed,
        inputCol="_sentence").fit(sentences)
    return model.getVectors().select(
        F.col("word").cast(id_type).alias(C.ID),
        vector_to_array("vector", "float32").alias(C.EMBEDDING))
