"""The trainers: one interface, one registry.

A trainer turns a walks table into an embeddings table. The train stage calls only this interface.
Adding a trainer: a module in this package with a subclass of Trainer, and its line in TRAINERS.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, Mapping, NamedTuple

if TYPE_CHECKING:  # the trainers use the configs; the configs list TRAINERS' names
    from pyspark.sql import DataFrame, SparkSession

    from spark_n2v.config import TrainConfig

# name -> "module:class". By name, not imported here: config.py checks --trainer against these
# names, and the trainers import the configs.
TRAINERS = {
    "mllib": "spark_n2v.train.mllib:MLlibTrainer",
    "sgns": "spark_n2v.train.sgns:SgnsTrainer",
}


class Trained(NamedTuple):
    """What a trainer returns: the embeddings table, the passes it made over the walks
    (train.epochs, or the trainer's choice when it is unset), and what else it measured."""

    embeddings: DataFrame
    epochs: int
    facts: Mapping[str, float] = MappingProxyType({})  # for the run record's counts


class Trainer(ABC):
    name: ClassVar[str]

    @abstractmethod
    def train(self, spark: SparkSession, walks: DataFrame, cfg: TrainConfig, work_dir: str
              ) -> Trained:
        """walks (walk_id, walk) -> embeddings (id in the walks' id type, embedding
        array<float>), one row per node (at least min_count times in the walks). work_dir:
        scratch space beside the output, deleted after; when a killed run of the same job (same
        command and inputs) is rerun, it holds what that run left, and a trainer may resume from
        it (sgns resumes after its last finished round)."""

    def train_from(self, spark: SparkSession, walks: DataFrame, cfg: TrainConfig, work_dir: str,
                   model: str, counts: DataFrame, neighbours: DataFrame | None = None
                   ) -> Trained:
        """train, starting from the model keep_model kept in `model` (its nodes' rows; a node it
        lacks starts at the mean of the rows of its `neighbours` (id, neighbour) the model has,
        or, with none, as in train), with the vocabulary's counts (id, count) of a whole corpus
        of which `walks` is a part (an update trains only the walks near its changes)."""
        raise NotImplementedError(f"the {self.name} trainer cannot start from a kept model")

    def keep_model(self, spark: SparkSession, work_dir: str, folder: str) -> bool:
        """After train (its embeddings written): copy the state a warm start of this trainer
        needs from work_dir into folder (update.state.MODEL). False: it has none (no warm
        start)."""
        return False


def trainer(name: str) -> Trainer:
    module, _, cls = TRAINERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()
