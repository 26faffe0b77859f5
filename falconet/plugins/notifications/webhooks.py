"""Incoming-webhook notifications: ``slack.SlackIncomingWebhook``, ``teams.TeamsIncomingWebhook``,
``discord.DiscordIncomingWebhook`` and ``google.GoogleChatIncomingWebhook``.

Each POSTs its rendered ``payload`` (a JSON document, sent as written with ``Content-Type:
application/json``) to its rendered ``url``, with the HTTP client of :mod:`falconet.plugins.core.http`
(``options``: ``connectTimeout``, ``readTimeout``, ``defaultCharset``…). A response status of 400 or more
fails the task with the start of the response body; the task has no outputs, as in Kestra.
"""
from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from falconet.plugins.core.http import _httpx, new_client
from falconet.sdk import Example, OBJECT, Prop, RunContext, RunnableTask, STRING, TaskFailed, register

#: bytes of an error response kept for the failure message
_ERROR_BODY = 1000


class IncomingWebhook(RunnableTask):
    """POST ``payload`` to ``url`` (see the module documentation)."""

    #: the service's name in logs and errors
    service: ClassVar[str] = ""
    props = {
        "url": Prop(STRING, required=True, description="The incoming webhook URL."),
        "payload": Prop(STRING, description="The message payload (JSON)."),
        "options": Prop(OBJECT, description="HTTP client options: connectTimeout, readTimeout, defaultCharset."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        url = str(ctx.prop("url") or "")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise TaskFailed(f"Invalid url '{url}': expected an http:// or https:// URL")
        payload = ctx.prop("payload")
        ctx.logger.debug(f"Send {self.service} webhook: {payload}")
        httpx = _httpx()
        async with new_client(ctx.prop("options") or {}, {}) as client:
            try:
                async with client.stream("POST", url, content=(payload or "").encode("utf-8"),
                                         headers={"Content-Type": "application/json"}) as response:
                    body = b""
                    async for chunk in response.aiter_bytes():
                        body += chunk[:_ERROR_BODY - len(body)]
                        if len(body) >= _ERROR_BODY:
                            break
            except httpx.HTTPError as exc:
                raise TaskFailed(f"{self.service} webhook request failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            text = body.decode("utf-8", errors="replace").strip()
            raise TaskFailed(f"{self.service} webhook failed with response code '{response.status_code}'"
                             + (f": {text}" if text else ""))
        return None


def _example(type_name: str, payload: str) -> Example:
    return Example(
        "Send a message when the flow fails.",
        "id: unreliable_flow\n"
        "namespace: company.team\n"
        "\n"
        "tasks:\n"
        "  - id: fail\n"
        "    type: io.kestra.plugin.core.execution.Fail\n"
        "\n"
        "errors:\n"
        "  - id: alert_on_failure\n"
        f"    type: {type_name}\n"
        "    url: \"{{ secret('WEBHOOK_URL') }}\"\n"
        "    payload: |\n"
        f"      {payload}\n", full=True)


_TEXT = "\"Failure alert for flow {{ flow.namespace }}.{{ flow.id }} with ID {{ execution.id }}\""


@register
class SlackIncomingWebhook(IncomingWebhook):
    """Send a Slack message through an incoming webhook (Rocket.Chat's work the same)."""

    type = "io.kestra.plugin.notifications.slack.SlackIncomingWebhook"
    title = "Send a Slack message using an Incoming Webhook."
    service = "Slack"
    examples = (_example(type, "{\"text\": " + _TEXT + "}"),)


@register
class TeamsIncomingWebhook(IncomingWebhook):
    """Send a Microsoft Teams message through an incoming webhook."""

    type = "io.kestra.plugin.notifications.teams.TeamsIncomingWebhook"
    title = "Send a Microsoft Teams message using an Incoming Webhook."
    service = "Microsoft Teams"
    examples = (_example(type, "{\"@type\": \"MessageCard\", \"@context\": \"https://schema.org/extensions\", "
                               "\"text\": " + _TEXT + "}"),)


@register
class DiscordIncomingWebhook(IncomingWebhook):
    """Send a Discord message through a webhook."""

    type = "io.kestra.plugin.notifications.discord.DiscordIncomingWebhook"
    title = "Send a Discord message using a Webhook."
    service = "Discord"
    examples = (_example(type, "{\"username\": \"Kestra\", \"content\": " + _TEXT + "}"),)


@register
class GoogleChatIncomingWebhook(IncomingWebhook):
    """Send a Google Chat message through an incoming webhook."""

    type = "io.kestra.plugin.notifications.google.GoogleChatIncomingWebhook"
    title = "Send a Google Chat message using an Incoming Webhook."
    service = "Google Chat"
    examples = (_example(type, "{\"text\": " + _TEXT + "}"),)
