"""DuckDB plugins (``io.kestra.plugin.jdbc.duckdb.*``), an optional extra: ``pip install falconet[duckdb]``.

Importing this package without the ``duckdb`` module installed raises ``ModuleNotFoundError`` naming
``duckdb``; the registry then leaves the family's types unknown (``falconet.plugins.OPTIONAL_DEPENDENCIES``).
"""
import importlib.util

# fail fast when the optional extra is missing, without importing duckdb (~20 MB) before a query runs
if importlib.util.find_spec("duckdb") is None:
    raise ModuleNotFoundError("No module named 'duckdb'", name="duckdb")

from falconet.plugins.duckdb import query  # noqa: F401,E402  (registration side effects)
