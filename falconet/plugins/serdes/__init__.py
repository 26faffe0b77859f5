"""Serdes plugins (``io.kestra.plugin.serdes.*``): convert files between CSV, JSON, Excel, Avro, Parquet
and Ion rows.

CSV and JSON need no extra library. Excel (``openpyxl``), Avro (``fastavro``) and Parquet (``pyarrow``)
are the ``serdes`` extra: those types are always registered (validation and docs list them), import their
library only when a task runs, and fail with the install hint when it is absent.
"""
from falconet.plugins.serdes import avro, csv, excel, json, parquet  # noqa: F401  (registration side effects)
