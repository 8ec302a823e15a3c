"""Which shop each Slack workspace reads (``config/teams.yaml``): one deployment, several shops, no data crossing.

A team listed there reads its own source (``source``), in its own currency and time zone; any other team
the deployment serves reads the deployment's shop (``KPI_SOURCE_URL``, ``KPIBOT_CURRENCY``,
``KPIBOT_TIMEZONE``). Goals, digests and alert rules are kept per team in the one state database
whatever the shop. A source URL may name environment variables (``${SHOP_A_URL}``) so that the file holds
no password.

    teams:
      T0123ABCD:
        name: Maison Lumière          # optional: how the shop is named in logs and the command line
        source: ${SHOP_A_URL}
        currency: EUR
        timezone: Europe/Paris
        mapping: lumiere-source.yaml  # optional: the shop's own tables (format of config/source.yaml)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from kpi.errors import KpiError

TEAM_ID = re.compile(r"^[TE][A-Z0-9]{2,}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
KEYS = {"name", "source", "currency", "timezone", "mapping"}


@dataclass(frozen=True)
class Shop:
    team_id: str
    source_url: str
    currency: str | None = None
    timezone: str | None = None
    name: str = ""
    mapping: str | None = None  # a file of the config directory mapping the shop's own tables (config/source.yaml's format)


def load_shops(config_dir: Path | str, environ: Mapping[str, str] | None = None) -> dict[str, Shop]:
    """The teams of ``<config_dir>/teams.yaml`` and their shops; {} when the file is absent or all comments.
    A mistake in the file is one line saying where and what, raised before anything is served."""
    path = Path(config_dir) / "teams.yaml"
    if not path.exists():
        return {}
    env = os.environ if environ is None else environ
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise KpiError("{path} is not valid YAML: {error}", path=str(path), error=str(exc).splitlines()[0]) from None
    teams = data.get("teams") if isinstance(data, dict) else None
    if teams is None:
        return {}
    if not isinstance(teams, dict):
        raise KpiError("{path}: teams must map each team id (T...) to its shop: source, currency, timezone",
                       path=str(path))
    shops: dict[str, Shop] = {}
    for team, entry in teams.items():
        where = f"{path}: teams.{team}"
        team = str(team).strip()
        if not TEAM_ID.match(team):
            raise KpiError("{where}: '{team}' is not a Slack team id (T0123ABCD, or E... for an organization)",
                           where=where, team=team)
        if isinstance(entry, str):
            entry = {"source": entry}
        if not isinstance(entry, dict):
            raise KpiError("{where}: give the shop's source (a database URL), and optionally currency and timezone",
                           where=where)
        unknown = sorted(set(map(str, entry)) - KEYS)
        if unknown:
            raise KpiError("{where}: unknown setting {names} (known: name, source, currency, timezone, mapping)",
                           where=where, names=", ".join(unknown))
        source = _expand(str(entry.get("source") or "").strip(), env, where)
        if not source:
            raise KpiError("{where}: source is missing: the shop's database URL (e.g. postgresql://reader@host/shop)",
                           where=where)
        if "://" not in source:  # (not echoed: it may hold a password)
            raise KpiError("{where}: source is not a database URL (e.g. postgresql://reader@host/shop)", where=where)
        currency = entry.get("currency")
        if currency is not None:
            currency = str(currency).strip().upper()
            if not CURRENCY.match(currency):
                raise KpiError("{where}: currency '{currency}' is not a 3-letter ISO code such as EUR",
                               where=where, currency=currency)
        zone = entry.get("timezone")
        if zone is not None:
            zone = str(zone).strip()
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise KpiError("{where}: timezone '{zone}' is not a time zone (use an IANA name such as Europe/Paris)",
                               where=where, zone=zone) from None
        mapping = entry.get("mapping")
        if mapping is not None:
            mapping = str(mapping).strip()
            if not mapping or Path(mapping).is_absolute() or ".." in Path(mapping).parts:
                raise KpiError("{where}: mapping must name a file of the config directory (e.g. shop-a-source.yaml)",
                               where=where)
            if not (Path(config_dir) / mapping).is_file():
                raise KpiError("{where}: mapping: no file {file} in the config directory", where=where, file=mapping)
        shops[team] = Shop(team, normalise_url(source), currency, zone, str(entry.get("name") or "").strip(),
                           mapping)
    return shops


def _expand(text: str, env: Mapping[str, str], where: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if not env.get(name):
            raise KpiError("{where}: the environment variable {name} named in source is not set", where=where, name=name)
        return env[name]

    return VARIABLE.sub(value, text)


def normalise_url(url: str) -> str:
    """Heroku-style ``postgres://`` URLs and bare ``postgresql://`` ones use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
