"""What every process needs, built once: settings, the KPI catalog, the source and state engines, and
the KPI engine. The command line, the Slack app and the worker share it."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from kpi.db import cached_engine
from kpi.errors import CatalogError, KpiError
from kpi.metrics.catalog import Catalog, load_catalog
from kpi.metrics.engine import KpiEngine
from kpi.metrics.mapping import MappedCatalog, kpi_engine, order_currencies
from kpi.metrics.mapping_file import load_mapping
from kpi.metrics.values import DimensionValues
from kpi.settings import Settings
from kpi.shops import Shop, load_shops
from kpi.state.tables import import_runs

log = logging.getLogger(__name__)
CURRENCY_EVERY = 30.0  # seconds between two looks at the last import (a new one: the currencies are read again)
CURRENCY_TTL = 600.0  # seconds the stored orders' currencies are trusted without an import


def is_mapped(services: Services) -> bool:
    """The shop (``services``, or a team's view) reads its own tables through a mapping (config/source.yaml, or
    the team's ``mapping:`` in config/teams.yaml): the importer, which writes canonical tables, refuses it."""
    return bool(mapped_tables(services))


def mapped_tables(services: Services) -> set[str]:
    """The canonical tables the shop's mapping reads from the shop's own tables (an import into one of them is
    refused; the other canonical tables of the source, such as traffic, may still be imported)."""
    catalog = services.catalog()
    return set(catalog.mapping.tables) if isinstance(catalog, MappedCatalog) else set()


class Services:
    def __init__(self, settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None):
        self._settings = settings or Settings.from_env()
        self._resolved: Settings | None = None
        self._resolved_from: Settings | None = None
        self._currencies: tuple[float, object, list[tuple[str, int]], float] | None = None
        self.clock = clock
        self._catalog: Catalog | None = None
        self._base: Catalog | None = None  # config/metrics.yaml as loaded (the root's, shared by every view)
        self._engine: KpiEngine | None = None
        self._values: DimensionValues | None = None
        self._lock = threading.Lock()
        self._shops: dict[str, Shop] | None = None
        self._views: dict[Shop, Services] = {}
        self._root: Services = self
        self.shop: Shop | None = None  # set on a team's view (``for_team``) when config/teams.yaml names the team

    # -- settings, and the shop's currency ---------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """The settings, their currency the shop's: the currency of its stored orders (the most frequent among
        its newest), else the team's in config/teams.yaml, else KPIBOT_CURRENCY, else USD. Reading the settings
        never waits for a database (the acknowledgement path reads them): the orders' currency is the one read
        last, by ``currency()``, which every KPI computation calls first (``kpi_engine``)."""
        hit = self._currencies
        currency = hit[2][0][0] if hit is not None and hit[2] else self._settings.currency
        resolved = self._resolved
        if resolved is None or resolved.currency != currency or self._resolved_from is not self._settings:
            resolved = self._resolved = dataclasses.replace(self._settings, currency=currency)
            self._resolved_from = self._settings
        return resolved

    @settings.setter
    def settings(self, value: Settings) -> None:
        self._settings, self._resolved = value, None

    def stated_currency(self) -> str | None:
        """The currency the operator stated (the team's in config/teams.yaml, else KPIBOT_CURRENCY), which an
        imported file may not contradict; None when only the USD default speaks (the data's own currency wins)."""
        if self.shop is not None and self.shop.currency:
            return self.shop.currency
        return self._settings.currency if self._settings.currency_explicit else None

    def currency(self) -> str:
        """The shop's currency (see ``settings``), read from the stored orders when the last reading is old."""
        found = self._order_currencies()
        return found[0][0] if found else self._settings.currency

    def currencies(self) -> list[str]:
        """Every currency of the stored orders, most frequent first ([] when there are none yet)."""
        return [code for code, _ in self._order_currencies()]

    def _order_currencies(self) -> list[tuple[str, int]]:
        """Read with one grouped query, again after an import (the last import's id, looked at every
        ``CURRENCY_EVERY`` seconds) or after ``CURRENCY_TTL`` seconds; never raises (no data: [])."""
        now = time.monotonic()
        hit = self._currencies
        if hit is not None and now - hit[0] < CURRENCY_EVERY:
            return hit[2]
        version = self._version()
        if hit is not None and version == hit[1] and now - hit[3] < CURRENCY_TTL:
            self._currencies = (now, version, hit[2], hit[3])
            return hit[2]
        try:
            found = order_currencies(self.catalog(), self.source())
        except KpiError:  # a configuration problem: said where the catalog is used; no currency from the data
            log.debug("currency of the stored orders not read", exc_info=True)
            found = []
        self._currencies = (now, version, found, now)
        return found

    def _version(self) -> object:
        try:
            return self._last_import()
        except Exception:  # noqa: BLE001 - no state database yet: no import either
            return None

    def shops(self) -> dict[str, Shop]:
        """config/teams.yaml: the teams that read a shop of their own (read once per process)."""
        root = self._root
        if root._shops is None:
            root._shops = load_shops(root._settings.config_dir)
        return root._shops

    def for_team(self, team_id: str | None) -> Services:
        """What ``team_id`` reads: its own shop's source, currency and time zone when config/teams.yaml
        names it, else the deployment's shop. The state database (goals, rules, digests, kept per team) and
        the catalog are shared; each shop has its own KPI engine and dimension values, so no number crosses
        from one shop to another."""
        root = self._root
        shop = root.shops().get(team_id) if team_id else None
        if shop is None:
            return root
        with root._lock:
            view = root._views.get(shop)
            if view is None:
                settings = dataclasses.replace(root._settings, source_url=shop.source_url,
                                               currency=shop.currency or root._settings.currency,
                                               timezone=shop.timezone or root._settings.timezone)
                view = Services(settings, clock=root.clock)
                view._root, view.shop = root, shop
                root._views[shop] = view
            return view

    def catalog(self) -> Catalog:
        """The KPI catalog (config/metrics.yaml), read through the shop's source mapping when it has one:
        config/source.yaml for the deployment's shop, the file a team's ``mapping:`` names for a team's."""
        if self._catalog is None:
            root = self._root
            if root._base is None:
                root._base = load_catalog(root._settings.config_dir / "metrics.yaml")
            if self.shop is None:
                mapping = load_mapping(root._settings.config_dir / "source.yaml")
            else:
                mapping = load_mapping(root._settings.config_dir / self.shop.mapping) if self.shop.mapping else None
            self._catalog = mapping.apply(root._base) if mapping is not None else root._base
        return self._catalog

    def source(self) -> Engine:
        return cached_engine(self._settings.source_url)

    def state(self) -> Engine:
        return cached_engine(self._settings.database_url)

    def kpi_engine(self) -> KpiEngine:
        """The KPI engine, built on first use (it checks the catalog against the source once)."""
        with self._lock:
            if self._engine is None:
                try:
                    engine = kpi_engine(self.catalog(), self.source(), tz=self._settings.tz, clock=self.clock)
                    engine.sql.shown_currency = self.currency  # amounts in another currency are refused, not mislabelled
                    self._engine = engine
                except CatalogError as exc:
                    if any("is not in the source database" in p for p in exc.problems):
                        if is_mapped(self):  # the shop's own tables: nothing to load, the mapping or the URL is wrong
                            raise KpiError(
                                "none of the tables the source mapping names is in the shop's database: check the "
                                "mapping's table names and the source URL (`kpibot source check` lists what is "
                                "missing).\n{problems}", problems=exc.localized,
                            ) from None
                        if self.shop is not None:
                            raise KpiError(
                                "this workspace's shop data is not there yet: load it with `kpibot import --team "
                                "{team} ...` or `kpibot demo-data --team {team}`, or check its source in "
                                "config/teams.yaml.\n{problems}", team=self.shop.team_id, problems=exc.localized,
                            ) from None
                        raise KpiError(
                            "the shop data is not there yet: run `kpibot db upgrade` then `kpibot demo-data` "
                            "(or `kpibot import`), or point KPI_SOURCE_URL at your data.\n{problems}",
                            problems=exc.localized,
                        ) from None
                    raise
            return self._engine

    def _last_import(self) -> object:
        """The last import's id: a new one means the source's values may have changed."""
        with self.state().connect() as conn:
            return conn.execute(select(func.max(import_runs.c.id))).scalar()

    def dimension_values(self) -> DimensionValues:
        """The values of each dimension in the source (for reading "in France", refusing "channel=tiktok"),
        read on first use, again every few minutes, and soon after an import (whichever process made it)."""
        with self._lock:
            if self._values is None:
                self._values = DimensionValues.from_source(self.source(), self.catalog(),
                                                           aliases_path=self._settings.config_dir / "dimensions.yaml",
                                                           version=self._last_import)
            return self._values
