"""Internal storage (``kestra:///`` files, :mod:`.internal`), namespace files and Ion row files."""
