"""The kernel: the engine that supervises, the execution and task-run actors, the state machine
(:mod:`.machine`), the execution document (:mod:`.execution`), states, the event bus and crash recovery."""
