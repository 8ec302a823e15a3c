"""Alert notifications in Slack, through the delivery log.

One thread per episode: the firing message in the rule's channel (with a chart of the window and the
threshold line, and the top contributors by dimension), repeats and the resolution in its thread, and
``chat.update`` of the first message to show the current status. Every notification claims its delivery
key ``alert:<rule>:<episode>:<step>`` first: two workers, restarts and retries never send one twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from slack_sdk.errors import SlackApiError

from kpi.alerts.evaluation import breach_significance, evaluate_rules, rule_request
from kpi.alerts.store import AlertRules, StateStore, StoredRule, all_rules
from kpi.errors import KpiError
from kpi.i18n import lang_of
from kpi.metrics.engine import KpiEngine, KpiRequest
from kpi.services import Services
from kpi.state.delivery import Claim, DeliveryLog
from kpi.state.lifecycle import pause_team

from .answer import upload_chart
from .delivery import NotConfirmed, deliver, record
from .digests import PERMANENT, REVOKED, not_installed
from .drawing import draw_chart
from .render.alerts import alert_message

log = logging.getLogger("kpibot.alerts")
CONTRIBUTOR_DIMENSIONS = ("channel", "device", "country")


@dataclass(frozen=True)
class Sent:
    rule_id: int
    key: str
    status: str  # sent | already | failed | retry
    detail: str = ""


def significance_of(spec, result):
    """For a rule that requires significance, the test shown in its message (None otherwise)."""
    if not spec.significant or result is None:
        return None
    try:
        return breach_significance(spec, result)
    except Exception:  # noqa: BLE001 - a message without its p-value is still the alert
        log.exception("significance of an alert on %s", spec.metric)
        return None


def contributors(engine: KpiEngine, request: KpiRequest):
    """The breakdown that explains a move best: the first dimension the KPI supports, vs the previous window."""
    dims = engine.catalog.dimensions_of(engine.catalog.metric(request.metric))
    for dim in CONTRIBUTOR_DIMENSIONS:
        if dim in dims:
            return engine.ask(KpiRequest(request.metric, request.period, compare="previous", filters=request.filters,
                                         breakdown=dim, series=False, top=5))
    return None


def repeated(text: str) -> str:
    """The fallback text of an alert posted again when its channel could not be checked for the first."""
    return f":repeat: {text}"


class AlertNotifier:
    def __init__(self, services: Services, client_for: Callable, *, clock: Callable[[], datetime] | None = None,
                 worker: str | None = None, settle: float | None = None, lease: timedelta | None = None):
        self.services = services
        self.client_for = client_for
        self.clock = clock or (lambda: datetime.now(UTC))
        self.log = DeliveryLog(services.state(), worker=worker, clock=self.clock, lease=lease)
        self.settle = settle  # seconds to wait after Slack did not answer before looking (bot.delivery)

    def check(self, *, force: bool = False, rules: list[StoredRule] | None = None) -> list[Sent]:
        """Evaluate the rules that are due (all with ``force``); then send every alert notification in the
        outbox — those just decided, and any that an earlier pass could not send (Slack down, a worker
        killed between taking and sending it)."""
        rules = all_rules(self.services.state()) if rules is None else rules
        by_shop: dict[int, tuple[Services, list[StoredRule]]] = {}  # each team's rules on its own shop's numbers
        for rule in rules:
            shop = self.services.for_team(rule.team_id)
            by_shop.setdefault(id(shop), (shop, []))[1].append(rule)
        for shop, group in by_shop.values():
            try:
                evaluate_rules(shop.kpi_engine(), self.services.state(), group, self.clock(), force=force)
            except Exception:  # noqa: BLE001 - one shop's source down: the others are evaluated, the outbox sent
                log.exception("alert rules on %s not evaluated", shop.shop.team_id if shop.shop else "the shop's source")
        wanted = {r.id for r in rules}
        self.log.recover()
        sent = []
        for row in self.log.due("alert"):
            _, rule_id, episode, step = row["key"].split(":")
            if int(rule_id) in wanted:
                sent.append(self.send(row["key"], row["team_id"], int(rule_id), int(episode), step))
        return sent

    def send(self, key: str, team_id: str, rule_id: int, episode: int, step: str) -> Sent:
        claim = self.log.claim_due(key)
        if claim is None:
            return Sent(rule_id, key, "already")
        with self.log.hold(claim):  # the lease is renewed however long the source or Slack takes
            return self._send(claim, key, team_id, rule_id, step)

    def _send(self, claim: Claim, key: str, team_id: str, rule_id: int, step: str) -> Sent:
        kind = step.rstrip("0123456789")  # fire, repeatN, resolve, errorN, no_dataN
        try:
            rule = AlertRules(self.services.state(), team_id).get(rule_id)
        except Exception:  # noqa: BLE001 - the rule was removed meanwhile: nothing to tell
            self.log.failed(claim, "rule removed")
            return Sent(rule_id, key, "failed", "rule removed")
        if rule.paused_at is not None:  # the team uninstalled the app or lost its token
            self.log.failed(claim, f"team paused: {rule.paused_reason}")
            return Sent(rule_id, key, "failed", "paused")
        try:
            client = self.client_for(rule.team_id)
        except KpiError as exc:  # no installation (uninstalled) or no usable token: not retried
            self.log.failed(claim, str(exc))
            if not_installed(exc):
                pause_team(self.services.state(), rule.team_id, "not_installed")
            return Sent(rule_id, key, "failed", "not_installed")
        shop = self.services.for_team(rule.team_id)  # the team's shop (config/teams.yaml)
        engine = shop.kpi_engine()
        metric = engine.catalog.metrics[rule.spec.metric]
        states = StateStore(self.services.state(), rule.team_id)
        stored = states.load(rule.id)
        state = stored.state
        lang = lang_of(self.services.settings.locale)
        currency = shop.settings.currency
        now = self.clock()
        posted = None
        try:
            request = rule_request(engine, rule.spec, now, series=kind == "fire")
            result = None if kind == "error" else engine.ask(request)
            if kind == "fire":
                try:
                    why = contributors(engine, request)
                except Exception:  # noqa: BLE001 - an alert without its contributors is still an alert
                    log.exception("contributors of rule %s", rule.id)
                    why = None
                message = alert_message(rule.id, rule.spec, metric, state, result, kind="fire", lang=lang,
                                        currency=currency, contributors=why, now=now,
                                        significance=significance_of(rule.spec, result))
                delivered = deliver(client, self.log, claim, channel=rule.spec.channel, text=message.text,
                                    blocks=message.blocks, settle=self.settle, repeated_text=repeated(message.text))
                posted = {"channel": delivered.channel, "ts": delivered.ts}
                states.set_message(rule.id, posted["channel"], posted["ts"])
                record(self.log, claim, delivered)
                # (found: an earlier attempt's message whose follow-ups never ran: its chart is attached now)
                self._chart(rule, metric, state, result, why, posted, client, lang=lang, currency=currency, now=now)
                return Sent(rule.id, key, "sent")
            fired_at = states.episode_started(rule.id, now)
            if kind in ("repeat", "resolve") and stored.message_ts:
                message = alert_message(rule.id, rule.spec, metric, state, result, kind=kind, lang=lang,
                                        currency=currency, now=now, fired_at=fired_at)
                delivered = deliver(client, self.log, claim, channel=stored.message_channel,
                                    thread_ts=stored.message_ts, text=message.text, blocks=message.blocks,
                                    settle=self.settle, repeated_text=repeated(message.text),
                                    reply_broadcast=kind == "resolve")
                posted = {"channel": delivered.channel, "ts": delivered.ts}
                record(self.log, claim, delivered, channel=stored.message_channel)
                self.update_status(rule, stored, state, client, lang=lang, fired_at=fired_at)
                return Sent(rule.id, key, "sent")
            message = alert_message(rule.id, rule.spec, metric, state, result, kind=kind, lang=lang,
                                    currency=currency, now=now, fired_at=fired_at)
            delivered = deliver(client, self.log, claim, channel=rule.spec.channel, text=message.text,
                                blocks=message.blocks, settle=self.settle, repeated_text=repeated(message.text))
            posted = {"channel": delivered.channel, "ts": delivered.ts}
            record(self.log, claim, delivered)
            return Sent(rule.id, key, "sent")
        except SlackApiError as exc:
            error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
            if posted is not None:  # the message went out; only a follow-up (chart, status update) failed
                log.warning("alert %s sent, but a follow-up failed: %s", key, error)
                return Sent(rule.id, key, "sent", error)
            if error in PERMANENT:
                self.log.failed(claim, error)
                if error in REVOKED:
                    pause_team(self.services.state(), rule.team_id, error)
                    log.error("alert %s: the token of %s is gone (%s): the team is paused", key, rule.team_id, error)
                    return Sent(rule.id, key, "failed", error)
                log.error("alert %s to %s failed: %s", key, rule.spec.channel, error)
                return Sent(rule.id, key, "failed", error)
            self.log.release(claim, error)
            return Sent(rule.id, key, "retry", error)
        except NotConfirmed as exc:  # no answer from Slack, and not in the channel after waiting
            self.log.release(claim, str(exc))
            return Sent(rule.id, key, "retry", str(exc))
        except Exception as exc:  # noqa: BLE001 - the source or Slack is unreachable: back to the outbox
            if posted is not None:
                log.exception("alert %s sent, but a follow-up failed", key)
                return Sent(rule.id, key, "sent", type(exc).__name__)
            log.exception("alert %s not sent", key)
            self.log.release(claim, f"{type(exc).__name__}: {exc}")
            return Sent(rule.id, key, "retry", type(exc).__name__)

    def _chart(self, rule, metric, state, result, why, posted, client, *, lang: str, currency: str, now) -> None:
        """The chart of the window with the threshold line, in the thread, then shown in the first message."""
        threshold = rule.spec.threshold if rule.spec.condition in ("above", "below") else None
        png = (draw_chart(result, lang=lang, currency=currency, threshold=threshold)
               if result.series else None)
        if not png:
            return
        # in the thread (joining the channel when the bot is not in it), then referenced once Slack says the
        # file is ready: too early and chat.update is refused (invalid_blocks)
        file_id = upload_chart(client, posted["channel"], png, f"alert-{rule.id}-{lang}.png", title=metric.name(lang),
                               thread_ts=posted["ts"], wait=True)
        if file_id:
            chart = alert_message(rule.id, rule.spec, metric, state, result, kind="status", lang=lang,
                                  currency=currency, contributors=why, chart_file_id=file_id,
                                  now=now, significance=significance_of(rule.spec, result))
            client.chat_update(channel=posted["channel"], ts=posted["ts"], text=chart.text, blocks=chart.blocks)

    def update_status(self, rule: StoredRule, stored, state, client, *, lang: str, fired_at=None) -> None:
        """Rewrite the episode's first message with the current status (acknowledged, snoozed, resolved),
        with the window's current numbers and contributors."""
        if not stored.message_ts:
            return
        shop = self.services.for_team(rule.team_id)
        engine = shop.kpi_engine()
        metric = engine.catalog.metrics[rule.spec.metric]
        result = why = None
        try:
            request = rule_request(engine, rule.spec, self.clock(), series=True)
            result = engine.ask(request)
            why = contributors(engine, request)
        except Exception:  # noqa: BLE001 - the status line matters more than the numbers
            log.exception("status of rule %s: numbers unavailable", rule.id)
        message = alert_message(rule.id, rule.spec, metric, state, result, kind="status", lang=lang,
                                currency=shop.settings.currency, contributors=why, now=self.clock(),
                                fired_at=fired_at or state.fired_at, significance=significance_of(rule.spec, result))
        try:
            client.chat_update(channel=stored.message_channel, ts=stored.message_ts, text=message.text,
                               blocks=message.blocks)
        except SlackApiError as exc:
            log.warning("chat.update of rule %s: %s", rule.id, exc.response.get("error"))
