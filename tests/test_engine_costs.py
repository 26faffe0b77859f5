"""What an execution costs the engine's thread beyond its own work: objects the garbage collector traverses,
cancel scopes, tasks spawned. Counted, not timed (benchmarks/bench_engine.py times them)."""
from __future__ import annotations

import gc

from falconet import open_engine


async def test_objects_alive_when_the_first_engine_opens_are_left_out_of_full_collections(tmp_path):
    async with open_engine(tmp_path, store="memory"):
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
    async with open_engine(tmp_path / "again", store="memory"):
        assert gc.get_freeze_count() <= frozen  # once per process: later objects are collected as usual
