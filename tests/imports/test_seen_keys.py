"""The compact memory of keys read so far (a person repeated in a file)."""

from __future__ import annotations

import random

from lifecycle.imports.service import SeenKeys


def test_it_answers_as_a_set_would_across_many_runs(monkeypatch):
    monkeypatch.setattr(SeenKeys, "RUN", 7)  # many small runs: every merge path is taken
    rng = random.Random(3)
    pool = [rng.getrandbits(64) - 2**63 for _ in range(300)] + [-(2**63), 2**63 - 1, 0]
    seen, reference = SeenKeys(), set()
    for _ in range(5000):
        key = rng.choice(pool)
        assert seen.seen(key) == (key in reference), key
        reference.add(key)
    assert len(seen._runs) > 1  # merged runs, not one per batch


def test_memory_is_eight_bytes_a_key():
    seen = SeenKeys()
    for key in range(100_000):
        assert not seen.seen(key * 7919)
    stored = sum(run.itemsize * len(run) for run in seen._runs)
    assert stored + len(seen._fresh) * 8 == 100_000 * 8
