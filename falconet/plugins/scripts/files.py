"""Files around a script run: the working directory's ``inputFiles`` and namespace files going in, the
``outputFiles`` globs and output directory going out.

One implementation, in :mod:`falconet.runtime.files` (``flow.WorkingDirectory`` needs it too and the
runtime must not import plugins); re-exported here for the script, storage and DuckDB plugins.
"""
from __future__ import annotations

from ...runtime.files import (
    as_file_map,
    copy_from_storage,
    copy_namespace_files,
    glob_match,
    glob_regex,
    localize_storage_uris,
    safe_join,
    upload_output_files,
    walk_files,
    write_input_files,
)

__all__ = ["as_file_map", "copy_from_storage", "copy_namespace_files", "glob_match", "glob_regex",
           "localize_storage_uris", "safe_join",
           "upload_output_files", "walk_files", "write_input_files"]
