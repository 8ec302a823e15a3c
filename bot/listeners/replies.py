"""Every interaction ends in a message to the user, even when something fails after Slack's acknowledgement
(the state database down or locked, a bug): what was not done, in their language, with a short reference
that the log carries with the details (never a traceback, a path or a URL).

A listener's work runs inside ``with Replying(...) as reply:``. Its answer goes through ``reply.send`` (the
``response_url``), which marks the request answered; an exception escaping the block is logged with a
reference and, when nothing was sent yet, answered once with the block's ``not_done`` sentence: privately
through the ``response_url``, or in a DM when there is none (the App Home's buttons).
"""

from __future__ import annotations

import logging

from kpi.errors import new_ref
from kpi.i18n import N_

from ..manage import GOAL_NOT_SAVED, NOT_CHANGED, NOT_READ, failure_message

log = logging.getLogger("kpibot.listeners")

# what was not done, after "Sorry, something went wrong (ref …)."
NOT_DONE = N_("Your request was not carried out. Try again in a moment.")
NOT_SHARED = N_("The answer was not shared. Try again in a moment.")
NOT_ACKNOWLEDGED = N_("The alert was not acknowledged. Try again in a moment.")
NOT_SNOOZED = N_("The alert was not snoozed. Try again in a moment.")


class Replying:
    """One request's reply: sent once, or an apology when the work fails before it was sent."""

    def __init__(self, deps, client, *, response_url: str | None, team_id: str, user_id: str,
                 not_done: str = NOT_DONE, lang: str | None = None, what: str = "request"):
        self.deps, self.client = deps, client
        self.response_url = response_url
        self.team_id, self.user_id = team_id, user_id
        self.not_done = not_done
        self.what = what
        self.sent = False
        self._lang = lang

    @property
    def lang(self) -> str:
        if self._lang is None:
            try:
                self._lang = self.deps.lang(self.client, self.team_id, self.user_id)
            except Exception:  # noqa: BLE001 - the apology must not fail on the way to the user's language
                log.warning("the language of %s could not be read: English", self.user_id)
                self._lang = "en"
        return self._lang

    @lang.setter
    def lang(self, value: str) -> None:
        self._lang = value

    def send(self, body: dict) -> bool:
        """Post to the response_url; from now on the request counts as answered (even if Slack refused:
        an apology would meet the same fate)."""
        self.sent = True
        return self.deps.send(self.response_url, body)

    def tell(self, text: str) -> bool:
        """A short private notice, below the message the button is on."""
        return self.send({"response_type": "ephemeral", "replace_original": False, "text": text})

    def __enter__(self) -> Replying:
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        ref = new_ref()
        log.error("%s failed [ref %s] team=%s user=%s: %s", self.what, ref, self.team_id, self.user_id,
                  type(exc).__name__, exc_info=(kind, exc, tb))
        if self.sent:
            return True
        self.apologize(ref)
        return True

    def apologize(self, ref: str, not_done: str | None = None) -> None:
        message = failure_message(self.lang, not_done or self.not_done, ref)
        self.sent = True
        try:
            if self.response_url:
                self.deps.send(self.response_url, {**message.as_response("ephemeral"), "replace_original": False})
            else:  # the Home tab has no response_url: a DM
                self.client.chat_postMessage(channel=self.user_id, text=message.text, blocks=message.blocks)
        except Exception:  # noqa: BLE001 - Slack unreachable too: the log has it
            log.warning("could not tell %s that their %s failed [ref %s]", self.user_id, self.what, ref)


__all__ = ["GOAL_NOT_SAVED", "NOT_ACKNOWLEDGED", "NOT_CHANGED", "NOT_DONE", "NOT_READ", "NOT_SHARED", "NOT_SNOOZED",
           "Replying", "failure_message"]
