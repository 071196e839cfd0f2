"""spark-n2v: node2vec graph embeddings as Spark batch jobs."""

__version__ = "0.1.0"
