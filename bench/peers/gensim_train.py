"""gensim's skip-gram with negative sampling on a walk corpus, timed: the peer of our sgns trainer.

Runs in .venv-peers. Trains Word2Vec(sg=1, negative sampling) on the corpus file (one walk per
line, space-separated ids: gensim's corpus_file mode, its fastest with several workers, and the
corpus never held in memory) and saves ids and vectors as .npz for bench/peers/score.py.
"""

import argparse
import time

import numpy as np
from gensim.models import Word2Vec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus")
    parser.add_argument("output")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--sample", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    started = time.perf_counter()
    model = Word2Vec(corpus_file=args.corpus, vector_size=args.dim, window=args.window, min_count=0, sg=1,
                     negative=args.negatives, sample=args.sample, workers=args.workers,
                     epochs=args.epochs, seed=args.seed)
    seconds = time.perf_counter() - started
    ids = np.array(model.wv.index_to_key)
    np.savez(args.output, ids=ids, vectors=model.wv.vectors)
    print(f"train_seconds={seconds:.2f} tokens={model.corpus_total_words} epochs={args.epochs}")


if __name__ == "__main__":
    main()
