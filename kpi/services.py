"""What every process needs, built once: settings, the KPI catalog, the source and state engines, and
the KPI engine. The command line, the Slack app and the worker share it."""

from __future__ import annotations

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
from kpi.state.tables import import_runs


class Services:
    def __init__(self, settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None):
        self.settings = settings or Settings.from_env()
        self.clock = clock
        self._catalog: Catalog | None = None
        self._engine: KpiEngine | None = None
        self._values: DimensionValues | None = None
        self._lock = threading.Lock()

    def catalog(self) -> Catalog:
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
