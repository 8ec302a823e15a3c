"""Charts at signed, expiring URLs: a private answer's image without a file in anyone's DM (issue 12).

In HTTP mode with ``KPIBOT_PUBLIC_URL``, the PNG of a private ``/kpi`` answer is kept in the state
database (``chart_images``: any web process can serve it) and the answer's image block points at
``<public url>/charts/<id>.<expires>.<signature>.png``. Slack fetches it from there. The id is random
(128 bits), the signature an HMAC-SHA256 of id and expiry with a server secret (``KPIBOT_CHART_SECRET``,
else derived from the signing secret): a URL cannot be guessed, altered or extended. Unknown, expired,
tampered: 404, whatever the reason. Expired rows are purged as new charts are stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, insert, select
from sqlalchemy.engine import Engine

from kpi.state.tables import chart_images

log = logging.getLogger("kpibot.charts")

LIFETIME = timedelta(days=1)  # Slack fetches (and caches) the image within seconds; a day is ample
UNREACHABLE_PAUSE = timedelta(minutes=10)  # after Slack could not download a chart: upload instead meanwhile
PATH_PREFIX = "/charts/"
_TOKEN = re.compile(r"([A-Za-z0-9_-]{16,64})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})\.png")


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def chart_key(signing_secret: str, chart_secret: str = "") -> bytes:
    """The key of the URLs' signatures: ``KPIBOT_CHART_SECRET``, else one derived from the signing secret
    (never the signing secret itself: a leaked chart URL must say nothing about it)."""
    if chart_secret:
        return hashlib.sha256(b"kpibot-chart-urls:" + chart_secret.encode()).digest()
    if not signing_secret:
        raise ValueError("chart URLs need SLACK_SIGNING_SECRET or KPIBOT_CHART_SECRET")
    return hmac.new(signing_secret.encode(), b"kpibot-chart-urls", hashlib.sha256).digest()


class ChartLinks:
    """Stores chart PNGs and signs, checks and serves their URLs."""

    def __init__(self, engine: Engine, public_url: str, key: bytes, *, lifetime: timedelta = LIFETIME,
                 clock: Callable[[], datetime] | None = None):
        self.engine = engine
        self.public_url = public_url.rstrip("/")
        self._key = key
        self.lifetime = lifetime
        self.clock = clock or (lambda: datetime.now(UTC))
        self._unreachable_until: datetime | None = None

    def reachable(self) -> bool:
        """False for a while after Slack said it could not download one of these URLs."""
        return self._unreachable_until is None or self.clock() >= self._unreachable_until

    def unreachable(self) -> None:
        """Slack could not download a chart from ``public_url``: charts are uploaded instead for
        ``UNREACHABLE_PAUSE``, then the URL is tried again (the operator may have fixed it)."""
        self._unreachable_until = self.clock() + UNREACHABLE_PAUSE
        log.warning("Slack could not download a chart from %s (KPIBOT_PUBLIC_URL): the web process must be "
                    "reachable from the internet at that address. Charts are uploaded instead for the next %d "
                    "minutes.", self.public_url, int(UNREACHABLE_PAUSE.total_seconds() // 60))

    def _sign(self, chart_id: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{chart_id}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def publish(self, png: bytes, *, team_id: str | None = None) -> str:
        """Store ``png`` and return its signed URL (valid for ``lifetime``)."""
        now = self.clock()
        expires_at = now + self.lifetime
        expires = int(expires_at.timestamp())
        chart_id = secrets.token_urlsafe(16)
        with self.engine.begin() as conn:
            conn.execute(delete(chart_images).where(chart_images.c.expires_at <= _naive_utc(now)))
            conn.execute(insert(chart_images).values(id=chart_id, team_id=team_id, png=png,
                                                     created_at=_naive_utc(now), expires_at=_naive_utc(expires_at)))
        return f"{self.public_url}{PATH_PREFIX}{chart_id}.{expires}.{self._sign(chart_id, expires)}.png"

    def fetch(self, path: str) -> bytes | None:
        """The PNG a ``/charts/<token>.png`` path names, or None (unknown, expired, bad signature)."""
        if not path.startswith(PATH_PREFIX):
            return None
        match = _TOKEN.fullmatch(path[len(PATH_PREFIX):])
        if match is None:
            return None
        chart_id, expires_text, signature = match.groups()
        expires = int(expires_text)
        if not hmac.compare_digest(self._sign(chart_id, expires).encode(), signature.encode()):
            return None
        now = self.clock()
        if expires <= now.timestamp():
            return None
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(chart_images.c.png).where(and_(
                    chart_images.c.id == chart_id, chart_images.c.expires_at > _naive_utc(now)))).first()
        except Exception:  # noqa: BLE001 - the database is away: the image is missing, never a 500
            log.exception("chart %s could not be read", chart_id[:6])
            return None
        return bytes(row[0]) if row is not None else None

    def purge(self) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(chart_images).where(chart_images.c.expires_at <= _naive_utc(self.clock()))).rowcount


def links_for(services, slack) -> ChartLinks | None:
    """The chart links of a deployment with ``KPIBOT_PUBLIC_URL`` (and a secret to sign with), else None."""
    if not slack.public_url:
        return None
    try:
        key = chart_key(slack.signing_secret, slack.chart_secret)
    except ValueError as exc:
        log.warning("KPIBOT_PUBLIC_URL is set but %s: charts are uploaded instead", exc)
        return None
    return ChartLinks(services.state(), slack.public_url, key)


def serving_deps(app):
    """The listeners' ``Deps`` of a Bolt app (``register`` installs ``Deps.inject`` as a middleware)."""
    for middleware in getattr(app, "_middleware_list", []):
        owner = getattr(getattr(middleware, "func", None), "__self__", None)
        if owner is not None and hasattr(owner, "services") and hasattr(owner, "slack"):
            return owner
    return None
