"""What the core flowable modules share: the package names and the ``errors``/``finally`` properties."""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from falconet.sdk import TASKS, parse_duration, Prop

if TYPE_CHECKING:
    from falconet.sdk import Machine, TaskRun, TaskSpec

PKG = "io.kestra.plugin.core.flow"
OLD = "io.kestra.core.tasks.flows"

#: `errors` and `finally` branches every flowable accepts (local error handling, always-run tasks)
BRANCHES: dict[str, Prop] = {
    "errors": Prop(TASKS, dynamic=False, description="Tasks run when a child task fails."),
    "finally": Prop(TASKS, dynamic=False, description="Tasks always run after the children, while still RUNNING."),
}


def rendered_duration(m: "Machine", tr: "TaskRun", task: "TaskSpec", value: Any) -> timedelta | None:
    """A duration property (a number of seconds, or an ISO-8601 string rendered first); None when unset."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    rendered = m.render(tr, task, value)
    if rendered in (None, ""):
        return None
    return parse_duration(str(rendered))
