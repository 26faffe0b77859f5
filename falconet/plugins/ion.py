"""Ion row files for plugins: re-exports :mod:`falconet.runtime.ionfiles` (the HTTP file preview reads the
same rows, and ``http`` may only import ``runtime``)."""
from ..runtime.ionfiles import from_ion_value, read_ion_rows, text_row_encoder, to_ion_line, write_ion_rows
from ..runtime.ionvalues import simpleion

__all__ = ["from_ion_value", "read_ion_rows", "simpleion", "text_row_encoder", "to_ion_line", "write_ion_rows"]
