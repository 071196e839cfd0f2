"""Embeddings served from Redis, the usual way precomputed vectors reach online services: one key
per node, `{prefix}{id}` (an integer id in decimal), its vector as little-endian float32 bytes
(`numpy.frombuffer(value, "<f4")` reads it back).

Spark tasks write the keys, each its partition in pipelined batches of SETs (redis-py, which the
driver and every executor need: the `redis` extra). An export is idempotent (a rerun sets the same
keys to the same bytes; a retried task too) and complete: afterwards the keys under the prefix are
exactly the table's ids. What readers see meanwhile: each SET replaces one key at once, so a node
of the table always has a vector, the previous export's or this one's (the two mix while the
export runs); keys of nodes the table no longer holds are deleted only after every key of the
table is written (one task lists the prefix with SCAN, Spark keeps the keys that are not the
table's, tasks delete them). The prefix is the export's own namespace: any other key under it is
deleted, so one export runs on a prefix at a time and no prefix starts another's (`emb:` would
delete the keys of `emb:v2:`). The table is read more than once (check, write, the stale keys):
it must give the same rows each time (files do; an API DataFrame with an unseeded sample would
not).

The server's URL carries its password (redis://:PASSWORD@host:port/db, rediss:// for TLS); the run
records and prints the URL without it."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.errors import UserError
from spark_n2v.redaction import redact_text

PIPELINE = 1000  # SETs or UNLINKs a task sends per round trip
SCAN_COUNT = 1000  # keys SCAN looks at per call
TIMEOUT = 10.0  # seconds to connect and for an answer


def _redis():
    try:
        import redis
    except ImportError:
        raise UserError("{export.format=redis} needs redis-py on the driver and on every executor: "
                        "pip install 'spark-n2v[redis]'") from None
    return redis


def _client(url: str):
    return _redis().Redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)


def check_server(url: str) -> None:
    """One PING from the driver before any job: an unreachable server or a refused password is
    one line naming the URL (without its password) and the cause."""
    redis = _redis()
    try:
        with _client(url) as client:
            client.ping()
    except ValueError as exc:  # redis-py's word for a URL it cannot parse
        raise UserError("{export.redis_url} {url}: not a Redis URL ({why}); use "
                        "redis://HOST:PORT/DB (a password goes after the scheme: :PASSWORD@)",
                        url=redact_text(url),
                        why=redact_text(str(exc))) from None
    except redis.exceptions.AuthenticationError as exc:
        raise UserError("{export.redis_url} {url}: the server refused the password ({why}): put "
                        "the right one in the URL, after the scheme as :PASSWORD@",
                        url=redact_text(url), why=redact_text(str(exc))) from None
    except redis.exceptions.RedisError as exc:
        why = "no answer in time" if isinstance(exc, redis.exceptions.TimeoutError) else str(exc)
        raise UserError("{export.redis_url} {url}: cannot reach the server ({why}); check the "
                        "host, the port and that the server runs", url=redact_text(url),
                        why=redact_text(why)) from None


def _pipelined(client, items: list, command) -> None:
    """`command(pipe, item)` for every item, PIPELINE of them a round trip."""
    for start in range(0, len(items), PIPELINE):
        pipe = client.pipeline(transaction=False)
        for item in items[start:start + PIPELINE]:
            command(pipe, item)
        pipe.execute()


def _key_column(prefix: str) -> F.Column:
    """`{prefix}{id}` as bytes: the same key the tasks write (an integer id in decimal)."""
    return F.concat(F.lit(prefix), F.col(C.ID).cast("string")).cast("binary")


def write_embeddings(embeddings: DataFrame, url: str, prefix: str, ttl: int | None,
                     dim: int) -> int:
    """SET every row's key to its vector (expiring after `ttl` seconds, if given); returns the
    keys written, counted from the rows the tasks wrote."""
    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        with _client(url) as client:
            for batch in batches:
                keys = batch.column(0).to_pylist()
                vectors = batch.column(1).flatten().to_numpy(zero_copy_only=False)
                values = np.ascontiguousarray(vectors, dtype="<f4").reshape(len(keys), dim)
                _pipelined(client, list(zip(keys, values)),
                           lambda pipe, kv: pipe.set(kv[0], kv[1].tobytes(), ex=ttl))
                yield pa.RecordBatch.from_pydict({"keys": [len(keys)]})

    rows = embeddings.select(_key_column(prefix).alias("key"), C.EMBEDDING)
    return rows.mapInArrow(write, "keys long").agg(F.sum("keys")).first()[0] or 0


def delete_stale(embeddings: DataFrame, url: str, prefix: str) -> int:
    """Delete the keys under `prefix` that are not the table's; returns how many were found."""
    pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"
    schema = pa.schema([("key", pa.binary())])

    def scan(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for _ in batches:  # the one row that makes this task
            pass
        with _client(url) as client:
            found: list[bytes] = []
            for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
                found.append(key)
                if len(found) >= 10 * SCAN_COUNT:
                    yield pa.RecordBatch.from_pydict({"key": found}, schema)
                    found = []
            yield pa.RecordBatch.from_pydict({"key": found}, schema)

    def delete(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        with _client(url) as client:
            for batch in batches:
                keys = batch.column(0).to_pylist()
                _pipelined(client, keys, lambda pipe, key: pipe.unlink(key))
                # counted from the keys found stale (a retried task finds some already gone)
                yield pa.RecordBatch.from_pydict({"deleted": [len(keys)]})

    spark = embeddings.sparkSession
    # SCAN may return a key twice (when Redis resizes its table during the scan)
    listed = spark.range(1, numPartitions=1).mapInArrow(scan, "key binary").dropDuplicates()
    ours = embeddings.select(_key_column(prefix).alias("key"))
    stale = listed.join(ours, "key", "left_anti")
    return stale.mapInArrow(delete, "deleted long").agg(F.sum("deleted")).first()[0] or 0
