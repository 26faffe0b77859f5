"""Script tasks (``io.kestra.plugin.scripts.*`` and the legacy ``io.kestra.core.tasks.scripts.*``) run by the
Process task runner. Importing this package registers every type."""
from falconet.plugins.scripts import base, legacy, node, python, shell  # noqa: F401  (registration side effects)
