"""The negative-sampling trainer: the kernel's updates are the gradient of the skip-gram objective
on a bucket, windows are word2vec's, P = 1 and P > 1 embed equally well, a seed and P fix the
embeddings, and bad flags are refused like the pipeline's."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import array_to_vector

from spark_n2v import streams
from spark_n2v.cli import main
from spark_n2v.train import sgns_kernel
from tests.helpers import Crash, crash_after_round, fails, macro_f1, planted_partition, write_csv


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _bucket_case(seed=3, window=3, dim=4, length=7, nodes=5, shared=3):
    """One walk's bucket (i, j) with i != j: every position is a row (input side), the odd
    positions are the columns (centres whose output node is in partition j)."""
    rng = np.random.default_rng(seed)
    walk = rng.integers(0, nodes, length)
    pos = np.arange(length)
    win = sgns_kernel.reduced_windows(seed, np.zeros(length, np.int64), pos, window)
    centres = pos[1::2]
    rows = sgns_kernel.Tokens.sorted(np.zeros(length, np.int64), pos, walk, win)
    cols = sgns_kernel.Tokens.sorted(np.zeros(len(centres), np.int64), centres, walk[centres],
                                  win[centres])
    syn0 = rng.normal(0, 0.3, (nodes, dim)).astype(np.float32)
    syn1 = rng.normal(0, 0.3, (nodes, dim)).astype(np.float32)
    counts = rng.integers(1, 10, nodes)
    # no repeat cap: the update must be exactly the gradient (the cap is tested on its own)
    law = sgns_kernel.BucketLaw(lr_start=0.01, lr_end=0.01, negatives=2, shared=shared, seed=seed,
                                key=0, repeat_cap=np.inf)
    return walk, win, centres, rows, cols, syn0, syn1, counts, law


# a walk's negatives by a loop per (row, negative), and (rows x shared >= GEMM_MIN_SCORES) as
# matrix products
@pytest.mark.parametrize("length, shared", [(7, 3), (40, 8)])
def test_kernel_update_is_the_gradient_of_the_objective(length, shared):
    walk, win, centres, rows, cols, syn0, syn1, counts, law = _bucket_case(length=length,
                                                                         shared=shared)
    assert (length * shared >= sgns_kernel.GEMM_MIN_SCORES) == (length > 7)
    neg_cum = sgns_kernel.negative_table(counts)
    # the kernel's negatives for this walk, drawn as it draws them
    u = streams.uniforms(law.seed, np.array([[0]]), law.key, np.arange(law.shared)[None, :],
                         streams.SGNS_NEGATIVE)[0]
    negs = np.minimum(np.searchsorted(neg_cum, u, "right"), len(counts) - 1)
    # centre c's output is syn1[walk[c]] (partition j); its context r's input is syn0[walk[r]]
    pairs = [(r, c) for r in range(len(walk)) for c in centres if 0 < abs(r - c) <= win[c]]
    weight = np.bincount([r for r, _ in pairs], minlength=len(walk)) * law.negatives / law.shared
    assert (weight == 0).any() and (weight > 0).any(), "the case must have pairless rows too"

    def objective(U, V):
        """Sum over the bucket's pairs of log sigmoid(u_r . v_c), plus over rows r and shared
        negatives n of weight_r log sigmoid(-u_r . v_n): negatives x the row's pairs here."""
        total = sum(np.log(_sigmoid(U[walk[r]] @ V[walk[c]])) for r, c in pairs)
        for r in range(len(walk)):
            for n in negs:
                total += weight[r] * np.log(_sigmoid(-U[walk[r]] @ V[n]))
        return total

    U0, V0 = syn0.astype(np.float64), syn1.astype(np.float64)
    expected_U, expected_V = np.zeros_like(U0), np.zeros_like(V0)
    eps = 1e-6
    for table, grad in ((U0, expected_U), (V0, expected_V)):
        for idx in np.ndindex(table.shape):
            table[idx] += eps
            up = objective(U0, V0)
            table[idx] -= 2 * eps
            down = objective(U0, V0)
            table[idx] += eps
            grad[idx] = (up - down) / (2 * eps)
    U, V = syn0.copy(), syn1.copy()
    sgns_kernel.train_bucket(U, V, rows, cols, neg_cum, law)
    # one batch, one step of gradient ascent from the same snapshot: update = lr x gradient
    np.testing.assert_allclose((U - syn0) / law.lr_start, expected_U, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose((V - syn1) / law.lr_start, expected_V, rtol=1e-3, atol=1e-4)
    assert np.abs(expected_U).max() > 0.1, "the case must exercise the gradient"


def test_rows_without_pairs_in_a_bucket_do_not_train_there():
    walk, win, centres, rows, cols, syn0, syn1, counts, law = _bucket_case()
    # walk 1 has rows in this bucket but no columns: no pairs here, so no negatives either
    extra = sgns_kernel.Tokens.sorted(np.r_[rows.walk, np.ones(3, np.int64)],
                                      np.r_[rows.pos, 0, 1, 2], np.r_[rows.local, 0, 1, 2],
                                      np.r_[rows.win, 1, 1, 1])
    U, V = syn0.copy(), syn1.copy()
    sgns_kernel.train_bucket(U, V, rows, cols, sgns_kernel.negative_table(counts), law)
    U2, V2 = syn0.copy(), syn1.copy()
    sgns_kernel.train_bucket(U2, V2, extra, cols, sgns_kernel.negative_table(counts), law)
    np.testing.assert_array_equal(U, U2)
    np.testing.assert_array_equal(V, V2)


def test_a_bucket_keeps_exactly_the_tokens_with_a_pair_in_it():
    rng = np.random.default_rng(11)
    walks, length, window = 30, 12, 3
    walk, pos = np.repeat(np.arange(walks) * 7, length), np.tile(np.arange(length), walks)
    win = sgns_kernel.reduced_windows(11, walk, pos, window)
    part = rng.integers(0, 3, len(walk))  # three partitions: sparse, so many tokens lack pairs
    tokens = [sgns_kernel.Tokens.sorted(walk[part == i], pos[part == i], pos[part == i],
                                        win[part == i]) for i in range(3)]
    for rows, cols in ((tokens[0], tokens[1]), (tokens[2], tokens[2])):
        # brute force: row r and column c pair when 0 < |pos_r - pos_c| <= win_c in one walk
        pair = ((rows.walk[:, None] == cols.walk[None, :])
                & (np.abs(rows.pos[:, None] - cols.pos[None, :]) > 0)
                & (np.abs(rows.pos[:, None] - cols.pos[None, :]) <= cols.win[None, :]))
        kept_rows, kept_cols, pairs = sgns_kernel.paired(rows, cols)
        assert 0 < len(kept_rows) < len(rows) and 0 < len(kept_cols) < len(cols)
        assert pairs == pair.sum()
        np.testing.assert_array_equal(kept_rows.walk, rows.walk[pair.any(axis=1)])
        np.testing.assert_array_equal(kept_rows.pos, rows.pos[pair.any(axis=1)])
        np.testing.assert_array_equal(kept_cols.pos, cols.pos[pair.any(axis=0)])
        np.testing.assert_array_equal(kept_cols.win, cols.win[pair.any(axis=0)])


def _walks_case(walks=40, length=30, nodes=50, dim=8):
    """Random walks as one bucket (P = 1), with tables: many batches, so many snapshots."""
    rng = np.random.default_rng(5)
    walk, pos = np.repeat(np.arange(walks), length), np.tile(np.arange(length), walks)
    node = rng.integers(0, nodes, walks * length)
    tokens = sgns_kernel.Tokens.sorted(walk, pos, node,
                                       sgns_kernel.reduced_windows(5, walk, pos, 5))
    syn0 = rng.normal(0, 0.1, (nodes, dim)).astype(np.float32)
    syn1 = rng.normal(0, 0.1, (nodes, dim)).astype(np.float32)
    neg_cum = sgns_kernel.negative_table(np.bincount(node, minlength=nodes) + 1)
    law = sgns_kernel.BucketLaw(lr_start=0.025, lr_end=0.001, negatives=5, shared=10, seed=5,
                                key=0)
    return tokens, syn0, syn1, neg_cum, law


def test_a_bucket_reports_its_pairs_and_row_visits():
    tokens, syn0, syn1, neg_cum, law = _walks_case()
    far = sgns_kernel.Tokens.sorted(tokens.walk + 10_000, tokens.pos, tokens.local, tokens.win)
    U, V = syn0.copy(), syn1.copy()
    assert sgns_kernel.train_bucket(U, V, far, tokens, neg_cum, law) == (0.0, 0, 0, 0)
    assert np.array_equal(U, syn0) and np.array_equal(V, syn1), "no walk in common: no update"
    done = sgns_kernel.train_bucket(U, V, tokens, tokens, neg_cum, law)
    brute = sum(1 for w in range(40) for r in range(30) for c in range(30)
                if 0 < abs(r - c) <= tokens.win[w * 30 + c])  # walks of 30 in walk order
    assert done.pairs == brute
    # a gather and a scatter per walk's row, column and shared negative (every token is both)
    assert done.row_visits == 2 * (2 * len(tokens) + 40 * law.shared)


def test_two_workers_train_exactly_as_one(monkeypatch):
    tokens, syn0, syn1, neg_cum, law = _walks_case()
    forked = []
    original = sgns_kernel._train_forked
    monkeypatch.setattr(sgns_kernel, "_train_forked",
                        lambda *a: forked.append(a[-1]) or original(*a))
    results = []
    for workers in (1, 2):
        U, V = syn0.copy(), syn1.copy()
        loss = sgns_kernel.train_bucket(U, V, tokens, tokens, neg_cum, law, workers)
        results.append((U, V, loss))
    assert forked == [2], "the second run must train in two processes"
    (U1, V1, loss1), (U2, V2, loss2) = results
    assert not np.array_equal(U1, syn0), "the case must train"
    np.testing.assert_array_equal(U1, U2)
    np.testing.assert_array_equal(V1, V2)
    assert loss1 == loss2


def test_a_failing_worker_stops_the_bucket_with_its_error(monkeypatch):
    tokens, syn0, syn1, neg_cum, law = _walks_case()
    parent, original = os.getpid(), sgns_kernel._compute

    def fails_in_the_child(*args, **kwargs):
        if os.getpid() != parent:
            raise MemoryError("out of memory in the child")
        return original(*args, **kwargs)

    monkeypatch.setattr(sgns_kernel, "_compute", fails_in_the_child)
    with pytest.raises(RuntimeError, match="worker 1 of 2 failed: MemoryError: out of memory"):
        sgns_kernel.train_bucket(syn0, syn1, tokens, tokens, neg_cum, law, workers=2)


def test_reduced_windows_are_uniform_on_one_to_window():
    window = 5
    win = sgns_kernel.reduced_windows(1, np.repeat(np.arange(2000), 10),
                                      np.tile(np.arange(10), 2000), window)
    counts = np.bincount(win, minlength=window + 1)
    assert counts[0] == 0 and win.max() == window
    expected = len(win) / window
    chi2 = ((counts[1:] - expected) ** 2 / expected).sum()
    assert chi2 < 18.5, chi2  # df 4, p = 0.001


def test_scatter_add_sums_repeated_rows_up_to_the_cap():
    rng = np.random.default_rng(0)
    original = rng.normal(size=(20, 3)).astype(np.float32)
    rows = np.array([3, 7, 3, 3, 1, 7, 19, 0])
    updates = rng.normal(size=(8, 3)).astype(np.float32)
    expected = original.copy()
    np.add.at(expected, rows, updates)
    table = original.copy()
    sgns_kernel.scatter_add(table, rows, updates)
    np.testing.assert_allclose(table, expected, rtol=1e-6)
    # with a cap of 2: row 3 (3 times) takes 2/3 of its sum; row 7 (twice) and the others all
    capped = original.copy()
    sgns_kernel.scatter_add(capped, rows, updates, repeat_cap=2.0)
    expected = original.copy()
    for row in set(rows.tolist()):
        at = rows == row
        expected[row] += updates[at].sum(0) * min(1.0, 2.0 / at.sum())
    np.testing.assert_allclose(capped, expected, rtol=1e-6)


def test_hub_rows_stay_stable_on_a_small_graph(spark, tmp_path):
    """77 nodes, so every node repeats in every batch: uncapped, the tables went to NaN in one
    epoch at the default learning rate."""
    from spark_n2v.demo import DATA
    walks = tmp_path / "walks"
    assert main(["walk", "--edges", DATA, "--weighted", "--output", str(walks), "--walk-length",
                 "40", "--num-walks", "10"]) == 0
    vectors = _train(str(walks), tmp_path / "emb", "--epochs", "5")
    x = np.stack(list(vectors.values()))
    assert np.isfinite(x).all() and np.abs(x).max() < 10, np.abs(x).max()


# --- through Spark -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def planted_walks(spark, tmp_path_factory):
    """Walks of a 4-block planted partition (string ids), and the labels."""
    tmp = tmp_path_factory.mktemp("sgns")
    edges, labels = planted_partition()
    walks = str(tmp / "walks")
    assert main(["walk", "--edges", write_csv(tmp / "pp.csv", edges), "--output", walks,
                 "--walk-length", "20", "--num-walks", "10", "--q", "0.5", "--seed", "1"]) == 0
    return walks, labels


def _train(walks, out, *flags):
    assert main(["train", "--trainer", "sgns", "--walks", walks, "--output", str(out), "--dim", "16",
                 "--window", "5", "--seed", "3", *flags]) == 0
    table = pq.read_table(str(out)).to_pydict()
    return dict(zip(table["id"], (np.asarray(e, np.float32) for e in table["embedding"])))


def _f1(spark, vectors, labels):
    rows = [(i, float(labels[i]), vectors[i].tolist(), int(i[1:]) % 2) for i in vectors]
    df = spark.createDataFrame(rows, "id string, label double, embedding array<float>, half int")
    df = df.withColumn("features", array_to_vector("embedding"))
    model = LogisticRegression(maxIter=200).fit(df.where("half = 0"))
    test = model.transform(df.where("half = 1")).select("label", "prediction").collect()
    return macro_f1([r.label for r in test], [r.prediction for r in test])


def test_partitions_do_not_cost_quality(spark, planted_walks, tmp_path):
    walks, labels = planted_walks
    scores = {}
    for P in (1, 4):
        vectors = _train(walks, tmp_path / f"p{P}", "--partitions", str(P), "--epochs", "3",
                         "--learning-rate", "0.05")
        assert sorted(vectors) == sorted(labels), "one embedding per node"
        assert all(v.shape == (16,) and np.isfinite(v).all() for v in vectors.values())
        scores[P] = _f1(spark, vectors, labels)
    print(f"sgns planted partition macro-F1 by P: {scores}")
    assert min(scores.values()) > 0.8, scores
    assert abs(scores[1] - scores[4]) <= 0.1, scores


def _thin_planted(folder, nodes=1000, blocks=10, degree=10, inside=0.7, seed=1):
    """A sparse planted partition (string ids v0..): each edge joins its source to its block with
    probability `inside`, else to any node. Returns (edges.parquet, {id: block})."""
    import pyarrow as pa
    rng = np.random.default_rng(seed)
    size, edges = nodes // blocks, nodes * degree // 2
    src = rng.integers(0, nodes, edges)
    dst = np.where(rng.random(edges) < inside, src // size * size + rng.integers(0, size, edges),
                   rng.integers(0, nodes, edges))
    keep = src != dst
    path = str(folder / "thin.parquet")
    pq.write_table(pa.table({"src": [f"v{a}" for a in src[keep]],
                             "dst": [f"v{b}" for b in dst[keep]]}), path)
    return path, {f"v{k}": k // size for k in range(nodes)}


def test_epochs_by_default_give_each_node_about_400_tokens_in_at_most_5_passes():
    from spark_n2v.train.sgns import auto_epochs
    assert [auto_epochs(tokens_a_node * 1000, 1000) for tokens_a_node in (800, 400, 399, 160, 80,
                                                                          3, 0)] == [1, 1, 2, 3, 5,
                                                                                     5, 5]


def test_a_thin_corpus_trains_in_enough_passes_to_tell_communities_apart(spark, tmp_path):
    """2 walks of 40 per node (80 tokens a node): one pass ends while every vector still grows
    along one shared direction, all nearly parallel (macro-F1 0.33 here; below chance at 200k
    nodes in 200 communities, where gensim's default of 5 passes scored 0.96); by default the
    trainer makes enough passes."""
    import json
    edges, labels = _thin_planted(tmp_path)
    walks = str(tmp_path / "walks")
    assert main(["walk", "--edges", edges, "--output", walks, "--walk-length", "40",
                 "--num-walks", "2", "--seed", "2"]) == 0
    one_pass = _f1(spark, _train(walks, tmp_path / "one", "--chunks", "2", "--epochs", "1"),
                   labels)
    default = _f1(spark, _train(walks, tmp_path / "default", "--chunks", "2"), labels)
    with open(tmp_path / "default" / "_run.json") as handle:
        assert json.load(handle)["counts"]["epochs"] == 5
    print(f"thin corpus macro-F1: one pass {one_pass:.3f}, default {default:.3f}")
    assert one_pass < 0.7, "the case must be thin enough for one pass to fall short"
    assert default > 0.9, default  # 0.94


def test_same_seed_and_partitions_same_embeddings(spark, planted_walks, tmp_path):
    walks, _ = planted_walks
    # the same walks, stored in 3 files instead of however many the walk stage wrote
    reshuffled = str(tmp_path / "walks3")
    spark.read.parquet(walks).repartition(3).write.parquet(reshuffled)
    # ... and trained with one process per task, then two (partitions by community: the layout
    # too depends on the walks only)
    layout = ("--layout", "graph")
    first = _train(walks, tmp_path / "a", "--partitions", "3", "--chunks", "2", "--workers", "1",
                   *layout)
    again = _train(reshuffled, tmp_path / "b", "--partitions", "3", "--chunks", "2",
                   "--workers", "2", *layout)
    assert first.keys() == again.keys()
    assert all(np.array_equal(first[k], again[k]) for k in first)
    other_seed = _train(walks, tmp_path / "c", "--partitions", "3", "--chunks", "2", "--seed", "4",
                        *layout)
    assert not all(np.array_equal(first[k], other_seed[k]) for k in first)


def test_vocabulary_ranked_in_one_task_or_in_spark_trains_the_same(spark, planted_walks,
                                                                   tmp_path, monkeypatch):
    """A small vocabulary is ranked and written by one task, a large one by Spark: the same
    vocabulary (string ids, ties by id), so the same embeddings."""
    from spark_n2v.train import sgns
    walks, _ = planted_walks
    one = _train(walks, tmp_path / "one", "--partitions", "3", "--chunks", "2")
    monkeypatch.setattr(sgns, "RANK_IN_ONE_TASK", 0)
    spread = _train(walks, tmp_path / "spread", "--partitions", "3", "--chunks", "2")
    assert one.keys() == spread.keys()
    assert all(np.array_equal(one[k], spread[k]) for k in one)


def test_killed_training_resumes_after_its_last_round(spark, planted_walks, tmp_path,
                                                      monkeypatch, caplog):
    walks, _ = planted_walks
    flags = ("--partitions", "2", "--chunks", "2", "--epochs", "2")  # 8 rounds
    revive = crash_after_round(monkeypatch, 3)
    with pytest.raises(Crash):
        _train(walks, tmp_path / "out", *flags)
    revive()
    assert not (tmp_path / "out").exists()
    caplog.clear()
    with caplog.at_level("INFO", logger="spark_n2v"):
        resumed = _train(walks, tmp_path / "out", *flags)
    lines = [r.getMessage() for r in caplog.records]
    assert any("resuming after round 3 of 8" in line for line in lines), lines
    assert not any("tokens split" in line for line in lines)  # the split was kept
    assert not (tmp_path / ".out.work").exists()
    whole = _train(walks, tmp_path / "whole", *flags)
    assert resumed.keys() == whole.keys()
    assert all(np.array_equal(resumed[k], whole[k]) for k in whole)


def test_run_with_sgns_keeps_integer_ids(spark, tmp_path):
    edges = write_csv(tmp_path / "e.csv", [(1, 2, 1), (2, 3, 1), (3, 1, 1), (3, 4, 1), (5, 5, 1)])
    out = tmp_path / "run"
    assert main(["run", "--edges", edges, "--output", str(out), "--trainer", "sgns", "--dim", "8",
                 "--walk-length", "5", "--num-walks", "2", "--train-partitions", "2",
                 "--epochs", "1"]) == 0
    table = pq.read_table(str(out / "embeddings"))
    assert str(table.schema.field("id").type) == "int64"
    assert sorted(table.column("id").to_pylist()) == [1, 2, 3, 4, 5]  # 5: a self-loop-only node
    # what the next update needs: the checked edges, and the model whose syn0 is the embeddings
    kept = out / "_update"
    assert pq.read_table(str(kept / "edges")).num_rows == 5
    assert (kept / "model" / "_model.json").exists()
    vocab = pq.read_table(str(kept / "model" / "vocab")).to_pydict()
    embedded = dict(zip(table.column("id").to_pylist(), table.column("embedding").to_pylist()))
    for node, part, local in zip(vocab["id"], vocab["part"], vocab["local"]):
        syn0 = np.load(kept / "model" / f"syn0-{part}.npy")
        assert np.array_equal(syn0[local], np.array(embedded[node], np.float32))


def test_bad_trainer_flags_are_refused(spark, capsys, planted_walks, tmp_path):
    walks, _ = planted_walks
    out = str(tmp_path / "out")
    base = ["train", "--walks", walks, "--output", out]
    with pytest.raises(SystemExit) as exit_:
        main(base + ["--trainer", "glove"])
    assert exit_.value.code == 2 and "--trainer: invalid choice" in capsys.readouterr().err
    fails(capsys, base + ["--trainer", "sgns", "--negatives", "0"], "--negatives", "at least 1")
    fails(capsys, base + ["--trainer", "sgns", "--chunks", "0"], "--chunks", "at least 1")
    fails(capsys, base + ["--trainer", "sgns", "--partitions", "0"], "--partitions", "at least 1")
    fails(capsys, base + ["--trainer", "sgns", "--learning-rate", "2"], "--learning-rate")
    no_ids = str(tmp_path / "no_ids")
    spark.read.parquet(walks).select("walk").write.parquet(no_ids)
    fails(capsys, ["train", "--walks", no_ids, "--output", out, "--trainer", "sgns"], "walk_id",
          "--trainer mllib")


def test_guided_draws_are_the_binary_search_s():
    rng = np.random.default_rng(4)
    for counts in (rng.integers(1, 1000, 500), np.r_[10**6, np.ones(300, np.int64)], [3]):
        cum = sgns_kernel.negative_table(np.asarray(counts))
        u = np.r_[rng.random(20000), 0.0, np.nextafter(1.0, 0), cum[:-1]]  # and the steps' edges
        expected = np.minimum(np.searchsorted(cum, u, "right"), len(cum) - 1)
        np.testing.assert_array_equal(sgns_kernel.draw(cum, u), expected)


def test_a_warm_start_begins_at_the_kept_model_and_keeps_rows_it_does_not_train(
        spark, planted_walks, tmp_path):
    """An update's training: the kept model's rows (here kept at P = 2, warm-started at P = 3),
    trained on the walks of two start nodes only; the vocabulary counted on the whole corpus,
    with three nodes the model lacks: two start at their neighbours' mean, one as a run's."""
    from dataclasses import replace

    from pyspark.sql import functions as F

    from spark_n2v.config import TrainConfig
    from spark_n2v.train import sgns

    def embeddings(frame):
        return {r["id"]: np.asarray(r["embedding"], np.float32) for r in frame.collect()}

    walks = spark.read.parquet(planted_walks[0])
    cfg = TrainConfig(trainer="sgns", dim=16, window=5, partitions=2, chunks=2, seed=3)
    before = embeddings(sgns.train_sgns(spark, walks, cfg, str(tmp_path / "first")).embeddings)
    sgns.keep_model(spark, str(tmp_path / "first"), str(tmp_path / "model"))
    assert sgns.kept_plan(spark, str(tmp_path / "model")).partitions == 2
    new = spark.createDataFrame([("n1", 30), ("n2", 20), ("n3", 10)], "id string, count long")
    counts = walks.select(F.explode("walk").alias("id")).groupBy("id").count().unionByName(new)
    neighbours = spark.createDataFrame(  # "gone" is no node of the model: no part of a start
        [("n1", "v1"), ("n1", "v2"), ("n1", "v40"), ("n1", "gone"), ("n2", "v7")],
        "id string, neighbour string")
    some = walks.where(F.col("walk")[0].isin("v0", "v31"))
    trained = {node for r in some.collect() for node in r["walk"]}
    warm = sgns.WarmStart(str(tmp_path / "model"), counts, neighbours)
    after = embeddings(sgns.train_sgns(spark, some, replace(cfg, partitions=3, learning_rate=0.01),
                                       str(tmp_path / "update"), warm).embeddings)
    assert after.keys() == before.keys() | {"n1", "n2", "n3"}, "every node counted"
    untouched = before.keys() - trained
    assert trained and untouched
    assert all(np.array_equal(before[k], after[k]) for k in untouched)
    assert not any(np.array_equal(before[k], after[k]) for k in trained)
    mean = np.mean([before[k].astype(np.float64) for k in ("v1", "v2", "v40")], axis=0)
    np.testing.assert_allclose(after["n1"], mean, rtol=1e-6)
    np.testing.assert_array_equal(after["n2"], before["v7"])
    assert not any(np.allclose(after["n3"], v) for v in before.values()), "a run's start"
