"""Serdes plugins (``io.kestra.plugin.serdes.*``): convert files between CSV, JSON, Excel and Ion rows.

CSV and JSON need no extra library. Excel needs ``openpyxl`` (the ``serdes`` extra): those types are
always registered (validation and docs list them) and fail at run time with the install hint when the
library is absent.
"""
from . import csv, excel, json  # noqa: F401  (registration side effects)
