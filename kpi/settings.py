"""Settings, read from the environment once, with documented defaults (see README, Configuration)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kpi.errors import KpiError
from kpi.shops import normalise_url as _normalise_url

DEFAULT_DATABASE_URL = "sqlite:///kpibot.db"


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    source_url: str = DEFAULT_DATABASE_URL
    timezone: str = "UTC"
    config_dir: Path = Path("config")
    currency: str = "USD"
    # KPIBOT_CURRENCY is set: the operator's currency, which a file's own currency may not replace (otherwise the
    # shop's currency is its data's: Services.settings)
    currency_explicit: bool = False
    locale: str = "en"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        database_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        timezone = env.get("KPIBOT_TIMEZONE") or "UTC"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise KpiError("KPIBOT_TIMEZONE='{zone}' is not a time zone (use an IANA name such as Europe/Paris).",
                           zone=timezone) from None
        config_dir = Path(env.get("KPIBOT_CONFIG") or "config")
        if not env.get("KPIBOT_CONFIG") and not (config_dir / "metrics.yaml").exists():
            # run from elsewhere than the repository: the repository's own config/ (an editable install)
            bundled = Path(__file__).resolve().parent.parent / "config"
            if (bundled / "metrics.yaml").exists():
                config_dir = bundled
        return cls(
            database_url=_normalise_url(database_url),
            source_url=_normalise_url(env.get("KPI_SOURCE_URL") or database_url),
            timezone=timezone,
            config_dir=config_dir,
            currency=(env.get("KPIBOT_CURRENCY") or "USD").strip().upper(),
            currency_explicit=bool((env.get("KPIBOT_CURRENCY") or "").strip()),
            locale=env.get("KPIBOT_LOCALE") or "en",
        )
