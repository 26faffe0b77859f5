"""The core flowable types (Kestra's ``io.kestra.plugin.core.flow`` package), one module per family.

Each class carries its declaration (``props``, the single source for flow validation and the plugin
docs; its canonical ``type`` and Kestra's legacy ``aliases``) and its behaviour: the
:class:`~falconet.sdk.plugin.FlowableTask` methods the state machine calls (``on_start``,
``next_task_runs``, ``resolve_state``, ``on_child_end``, ``on_timer``, ``on_resume``, ``restore``…).
A class may define ``validate_spec(spec) -> list[str]``: type-specific checks that flow validation runs
after the properties were parsed (messages as Kestra words them).

- :mod:`.sequential` — Sequential, Parallel, AllowFailure, Template
- :mod:`.branch` — If, Switch
- :mod:`.loops` — ForEach, EachSequential, EachParallel, WaitFor
- :mod:`.dag` — Dag
- :mod:`.pause` — Pause
- :mod:`.subflow` — Subflow
- :mod:`.foreachitem` — ForEachItem and its internal children
- :mod:`.workingdir` — WorkingDirectory
"""
