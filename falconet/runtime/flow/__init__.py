"""Flows: the model (:mod:`.model`), YAML parsing and validation (:mod:`.parsing` over :mod:`.parse`),
inputs, topology and listener conditions."""
