"""Flow parsing passes behind :mod:`falconet.runtime.flow.parsing`: ``yamlload`` (safe YAML with lines and duplicate-key
detection), ``context`` (violations, pluginDefaults), ``props`` (property kinds, retry), ``tasks`` (tasks,
triggers, conditions through the registry), ``inputdefs`` (input/output definitions), ``toplevel`` (the flow
mapping and whole-flow checks)."""
