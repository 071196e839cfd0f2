"""PecanPy's walks (and optionally gensim's skip-gram on them), as one timed process.

Runs in .venv-peers. Reads the .edg file, walks with the given mode, writes the walks as a
space-separated text corpus (one walk per line, as node2vec's tools do); with --embed, also trains
gensim Word2Vec (skip-gram, negative sampling) on the walks and saves the vectors.
"""

import argparse
import time

from pecanpy import pecanpy as node2vec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("edges")
    parser.add_argument("output")
    parser.add_argument("--mode", default="SparseOTF")
    parser.add_argument("--p", type=float, default=1.0)
    parser.add_argument("--q", type=float, default=1.0)
    parser.add_argument("--num-walks", type=int, default=10)
    parser.add_argument("--walk-length", type=int, default=80)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--embed", action="store_true")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--window", type=int, default=10)
    args = parser.parse_args()
    started = time.perf_counter()
    graph = getattr(node2vec, args.mode)(args.p, args.q, args.workers, verbose=False,
                                         random_state=args.seed)
    graph.read_edg(args.edges, weighted=False, directed=False, delimiter="\t")
    walks = graph.simulate_walks(args.num_walks, args.walk_length)
    walked = time.perf_counter()
    if args.embed:
        from gensim.models import Word2Vec
        model = Word2Vec(walks, vector_size=args.dim, window=args.window, min_count=0, sg=1,
                         negative=5, workers=args.workers, epochs=1, seed=args.seed)
        model.wv.save_word2vec_format(args.output)
    else:
        with open(args.output, "w") as handle:
            for walk in walks:
                handle.write(" ".join(walk) + "\n")
    print(f"walk_seconds={walked - started:.1f} total_seconds={time.perf_counter() - started:.1f}")


if __name__ == "__main__":
    main()
