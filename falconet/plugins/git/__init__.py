"""Git tasks (``io.kestra.plugin.git.*``): clone a repository, sync flows and namespace files from it, push
flows to it. They drive the ``git`` program through the Process runner (:mod:`.repo`). Importing this package
registers every type."""
from falconet.plugins.git import clone, push, sync  # noqa: F401  (registration side effects)
