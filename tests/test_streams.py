"""Every random draw is declared in streams.py: no two streams or salts collide, and no other
module draws on its own."""

from __future__ import annotations

import pathlib
import re

from spark_n2v import streams

PACKAGE = pathlib.Path(streams.__file__).parent


def _declared(prefixes: tuple[str, ...]) -> dict[str, int]:
    return {name: value for name, value in vars(streams).items()
            if name.startswith(prefixes) and isinstance(value, int)}


def test_no_two_numpy_streams_are_equal():
    values = list(streams.NUMPY_STREAMS.values())
    assert len(set(values)) == len(values), streams.NUMPY_STREAMS
    # every stream constant is in the list the check reads
    assert _declared(("WALK_", "SGNS_")) == streams.NUMPY_STREAMS


def test_no_two_salts_are_equal():
    values = list(streams.SALTS.values())
    assert len(set(values)) == len(values), streams.SALTS
    declared = _declared(("SIMILAR_", "LINKPRED_", "CLASSIFY_", "PLOT_", "TRAIN_"))
    assert set(declared.items()) <= set(streams.SALTS.items()), declared
    assert len(streams.SALTS) == len(declared) + 2 * (streams.NON_EDGE_ATTEMPTS - 1)


def test_streams_draw_independent_uniforms():
    """Different streams of the same coordinates are uncorrelated (the walk kernels draw three)."""
    import numpy as np
    walk = np.arange(20000)
    draws = [streams.uniforms(7, walk, 3, 0, s) for s in streams.NUMPY_STREAMS.values()]
    for i in range(len(draws)):
        assert abs(draws[i].mean() - 0.5) < 0.01
        for j in range(i):
            assert abs(np.corrcoef(draws[i], draws[j])[0, 1]) < 0.03


def test_no_module_draws_outside_streams():
    """Hashes, generators and stream numbers come from streams.py only."""
    pattern = re.compile(r"xxhash64|np\.random|import random|default_rng|F\.rand\b|"
                         r"uniforms\([^)]*,\s*\d+\s*\)")
    found = [f"{path.relative_to(PACKAGE)}:{n}" for path in PACKAGE.rglob("*.py")
             if path.name != "streams.py"
             for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, found
