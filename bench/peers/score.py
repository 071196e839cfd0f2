"""Node classification score of embeddings: logistic regression on a stratified 50/50 split,
three splits by default; prints macro-F1 and micro-F1 (means) as JSON. Runs in .venv-peers (scikit-learn).
--sample N scores N labelled nodes drawn with a fixed seed (the same for every embedding), for
graphs where fitting on all of them would take longer than the training.

    score.py [--splits N] [--sample N] LABELS.npz EMBEDDINGS.npz [...]   (labels: ids, labels; embeddings: ids, vectors)
"""

import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split


def score(labels_path: str, embeddings_path: str, splits: int = 3, sample: int = 0) -> dict:
    labels = dict(np.load(labels_path))
    if 0 < sample < len(labels["ids"]):
        drawn = np.sort(np.random.default_rng(0).choice(len(labels["ids"]), sample, replace=False))
        labels = {k: v[drawn] for k, v in labels.items()}
    emb = np.load(embeddings_path)
    position = {str(k): i for i, k in enumerate(emb["ids"])}
    keep = [i for i, k in enumerate(labels["ids"]) if str(k) in position]
    X = emb["vectors"][[position[str(labels["ids"][i])] for i in keep]]
    y = labels["labels"][keep]
    macro, micro = [], []
    for seed in range(splits):
        a, b, ya, yb = train_test_split(X, y, train_size=0.5, random_state=seed, stratify=y)
        predicted = LogisticRegression(max_iter=2000).fit(a, ya).predict(b)
        macro.append(f1_score(yb, predicted, average="macro"))
        micro.append(f1_score(yb, predicted, average="micro"))
    return {"macro_f1": float(np.mean(macro)), "micro_f1": float(np.mean(micro)),
            "scored": len(keep), "labelled": len(labels["ids"])}


if __name__ == "__main__":
    args = sys.argv[1:]
    options = {"--splits": 3, "--sample": 0}
    while args[0] in options:
        options[args[0]], args = int(args[1]), args[2:]
    print(json.dumps({path: score(args[0], path, options["--splits"], options["--sample"])
                      for path in args[1:]}))
