"""Notification tasks (``io.kestra.plugin.notifications.*``): the Slack, Microsoft Teams, Discord and Google
Chat incoming webhooks (:mod:`.webhooks`) and e-mail over SMTP (:mod:`.mail`). Plain tasks: they run in
``tasks``, ``errors``, ``finally`` and ``afterExecution`` alike."""
from falconet.plugins.notifications import mail, webhooks  # noqa: F401  (registration side effects)
