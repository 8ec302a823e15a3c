"""A local stand-in for the Slack Web API, for tests and the offline demo.

Slack cannot be reached from here, so ``SlackStandIn`` serves the methods KPI Bot uses on
``http://127.0.0.1:PORT/api/`` and checks each request as strictly as Slack does: authentication
(``Authorization: Bearer`` or a form ``token``; one team per token), argument rules and error codes,
Block Kit limits (``invalid_blocks`` with Slack's ``[json-pointer:...]`` messages), the external file
upload flow, trigger ids (3 s, once), response URLs (5 uses in 30 min) and OAuth code exchange. It
records every call and every accepted message, and can fail or delay chosen calls::

    with SlackStandIn() as slack:
        client = WebClient(base_url=slack.base_url, token=slack.bot_token)
        client.chat_postMessage(channel="C0GENERAL", text="hi")
        assert slack.messages_in("C0GENERAL")[0].text == "hi"

Modules: ``blocks`` (Block Kit validation), ``multipart`` (form parsing), and private ones per concept
(``_chat``, ``_views``, ``_files``, ``_directory`` for Web API methods; ``_http`` for the server).
"""

from ._records import Call, Message
from ._standin import SlackStandIn, running
from .blocks import validate_blocks, validate_view

__all__ = ["Call", "Message", "SlackStandIn", "running", "validate_blocks", "validate_view"]
