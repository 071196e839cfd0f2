"""`spark-n2v export --format redis` against a Redis server on loopback (password required): every
embedding under {prefix}{id} as float32 bytes, read back with numpy; a rerun writes the same keys;
an export after the table lost nodes deletes their keys (and only keys under its prefix); a TTL;
an unreachable server and a refused password are one line, the password never recorded."""

from __future__ import annotations

import json
import socket

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_n2v.cli import main
from spark_n2v.services import RedisServer
from tests.helpers import fails

PASSWORD = "redis-pass-5151"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RedisServer(str(tmp_path_factory.mktemp("redis")), PASSWORD) as running:
        yield running


@pytest.fixture()
def client(server):
    import redis
    connection = redis.Redis(host="127.0.0.1", port=server.port, password=PASSWORD)
    connection.flushdb()
    yield connection
    connection.close()


def _table(folder, ids, dim: int = 8, seed: int = 0) -> dict:
    """An embeddings table in two files; returns {id: vector}."""
    folder.mkdir()
    vectors = np.random.default_rng(seed).normal(size=(len(ids), dim)).astype(np.float32)
    half = len(ids) // 2
    for k, part in enumerate((slice(0, half), slice(half, None))):
        rows = {"id": ids[part], "embedding": [v.tolist() for v in vectors[part]]}
        pq.write_table(pa.table(rows), str(folder / f"part-{k}.parquet"))
    return dict(zip(ids, vectors))


def _export(table, out, url, *extra) -> dict:
    assert main(["export", "--embeddings", str(table), "--output", str(out), "--format", "redis",
                 "--redis-url", url, "--overwrite", *extra]) == 0
    return json.loads((out / "_run.json").read_text())


def _stored(client, prefix: str) -> dict:
    keys = [key for key in client.scan_iter() if key.decode().startswith(prefix)]
    return {key.decode()[len(prefix):]: np.frombuffer(client.get(key), "<f4") for key in keys}


def test_every_embedding_is_a_key_of_float32_bytes_and_a_rerun_writes_the_same(
        spark, server, client, tmp_path):
    vectors = _table(tmp_path / "emb", list(range(0, 3000, 3)))
    client.set("other:1", b"not ours")
    run = _export(tmp_path / "emb", tmp_path / "out", server.url())
    stored = _stored(client, "emb:")
    assert stored.keys() == {str(i) for i in vectors}
    for node, vector in vectors.items():
        np.testing.assert_array_equal(stored[str(node)], vector)
        assert stored[str(node)].dtype == np.dtype("<f4")
    assert run["counts"]["keys_written"] == len(vectors)
    assert run["counts"]["keys_deleted"] == 0
    assert client.ttl(f"emb:{next(iter(vectors))}") == -1  # no TTL unless asked
    assert PASSWORD not in (tmp_path / "out" / "_run.json").read_text()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_run.json"]

    again = _export(tmp_path / "emb", tmp_path / "out", server.url())
    assert again["counts"] == run["counts"] | {"keys_written": len(vectors), "keys_deleted": 0}
    assert _stored(client, "emb:").keys() == stored.keys()
    assert client.get("other:1") == b"not ours"


def test_nodes_gone_from_the_table_lose_their_keys_and_other_prefixes_stay(
        spark, server, client, tmp_path):
    before = _table(tmp_path / "before", ["a", "b", "c", "d", "e", "f"])
    after = _table(tmp_path / "after", ["a", "c", "e", "g"], seed=1)
    _export(tmp_path / "before", tmp_path / "o1", server.url(), "--prefix", "n2v[1]:")
    _export(tmp_path / "before", tmp_path / "o2", server.url(), "--prefix", "n2v[2]:")
    assert _stored(client, "n2v[1]:").keys() == before.keys()
    run = _export(tmp_path / "after", tmp_path / "o3", server.url(), "--prefix", "n2v[1]:",
                  "--ttl", "3600")
    assert run["counts"]["keys_written"] == 4 and run["counts"]["keys_deleted"] == 3
    stored = {k: v for k, v in ((key.decode(), client.get(key))
                                for key in client.scan_iter(match="n2v*"))}
    assert {k for k in stored if k.startswith("n2v[1]:")} == {f"n2v[1]:{i}" for i in after}
    assert {k for k in stored if k.startswith("n2v[2]:")} == {f"n2v[2]:{i}" for i in before}
    for node, vector in after.items():
        np.testing.assert_array_equal(np.frombuffer(stored[f"n2v[1]:{node}"], "<f4"), vector)
    assert 3500 < client.ttl("n2v[1]:g") <= 3600


def test_a_refused_password_and_an_unreachable_server_are_one_line(spark, server, capsys,
                                                                   tmp_path):
    _table(tmp_path / "emb", [1, 2, 3, 4])
    base = ["export", "--embeddings", str(tmp_path / "emb"), "--format", "redis"]
    wrong = server.url(password="wrong-pass-7373")
    line = fails(capsys, [*base, "--output", str(tmp_path / "o1"), "--redis-url", wrong],
                 "--redis-url", "refused the password")
    assert "wrong-pass-7373" not in line
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    fails(capsys, [*base, "--output", str(tmp_path / "o2"), "--redis-url",
                   f"redis://127.0.0.1:{port}/0"], "--redis-url", "cannot reach the server")
    fails(capsys, [*base, "--output", str(tmp_path / "o3")], "--format redis", "--redis-url")
    fails(capsys, ["export", "--embeddings", str(tmp_path / "emb"), "--output",
                   str(tmp_path / "o4"), "--ttl", "60"], "--ttl", "are for --format redis")


def test_a_password_given_as_a_query_parameter_is_not_recorded(spark, server, client, tmp_path):
    vectors = _table(tmp_path / "emb", [5, 6, 7, 8])
    url = f"redis://127.0.0.1:{server.port}/0?password={PASSWORD}"
    run = _export(tmp_path / "emb", tmp_path / "out", url)
    assert run["counts"]["keys_written"] == len(vectors)
    assert PASSWORD not in (tmp_path / "out" / "_run.json").read_text()
    assert "password=" in run["parameters"]["export"]["redis_url"]  # redacted, not dropped
