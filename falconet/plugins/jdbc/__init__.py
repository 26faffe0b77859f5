"""Database tasks (``io.kestra.plugin.jdbc.*``): SQLite (standard library) and PostgreSQL (optional extra
``postgres``, psycopg 3). What they share — fetch types, parameters, statement splitting, the interruptible
worker thread — is :mod:`falconet.plugins.jdbc.common`; DuckDB (:mod:`falconet.plugins.duckdb`) uses it too.
The registry imports each driver's module on its own, so a missing extra disables only its driver."""
