"""What every process needs, built once: settings, the KPI catalog, the source and state engines, and
the KPI engine. The command line, the Slack app and the worker share it."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from kpi.db import cached_engine
from kpi.errors import CatalogError, KpiError
from kpi.metrics.catalog import Catalog, load_catalog
from kpi.metrics.engine import KpiEngine
from kpi.metrics.values import DimensionValues
from kpi.settings import Settings
from kpi.shops import Shop, load_shops
from kpi.state.tables import import_runs


class Services:
    def __init__(self, settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None):
        self.settings = settings or Settings.from_env()
        self.clock = clock
        self._catalog: Catalog | None = None
        self._engine: KpiEngine | None = None
        self._values: DimensionValues | None = None
        self._lock = threading.Lock()
        self._shops: dict[str, Shop] | None = None
        self._views: dict[Shop, Services] = {}
        self._root: Services = self
        self.shop: Shop | None = None  # set on a team's view (``for_team``) when config/teams.yaml names the team

    def shops(self) -> dict[str, Shop]:
        """config/teams.yaml: the teams that read a shop of their own (read once per process)."""
        root = self._root
        if root._shops is None:
            root._shops = load_shops(root.settings.config_dir)
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
                settings = dataclasses.replace(root.settings, source_url=shop.source_url,
                                               currency=shop.currency or root.settings.currency,
                                               timezone=shop.timezone or root.settings.timezone)
                view = Services(settings, clock=root.clock)
                view._catalog, view._root, view.shop = root._catalog, root, shop
                root._views[shop] = view
            return view

    def catalog(self) -> Catalog:
        if self._root is not self:
            return self._root.catalog()
        if self._catalog is None:
            self._catalog = load_catalog(self.settings.config_dir / "metrics.yaml")
        return self._catalog

    def source(self) -> Engine:
        return cached_engine(self.settings.source_url)

    def state(self) -> Engine:
        return cached_engine(self.settings.database_url)

    def kpi_engine(self) -> KpiEngine:
        """The KPI engine, built on first use (it checks the catalog against the source once)."""
        with self._lock:
            if self._engine is None:
                try:
                    self._engine = KpiEngine(self.catalog(), self.source(), tz=self.settings.tz, clock=self.clock)
                except CatalogError as exc:
                    if any("is not in the source database" in p for p in exc.problems):
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
                                                           aliases_path=self.settings.config_dir / "dimensions.yaml",
                                                           version=self._last_import)
            return self._values
