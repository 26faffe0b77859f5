"""DuckDB plugins (``io.kestra.plugin.jdbc.duckdb.*``), an optional extra: ``pip install falconet[duckdb]``.

Importing this package without the ``duckdb`` module installed raises ``ModuleNotFoundError`` naming
``duckdb``; ``load_plugins()`` then skips the family (``falconet.plugins.OPTIONAL_DEPENDENCIES``).
"""
import duckdb as _duckdb  # noqa: F401  (fail fast when the optional extra is missing)

from . import query  # noqa: F401,E402  (registration side effects)
