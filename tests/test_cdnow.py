"""Real public data through the importer: the CDNOW purchase log (69,659 purchases of 23,570 customers,
January 1997 to June 1998), as shipped in the Lifetimes 0.11.3 wheel on PyPI.

The raw file is turned into a canonical orders CSV, imported with ``import_csv``, and the monthly
orders, revenue, average order value and new customers computed with SQL over the imported tables must
match an independent pandas computation from the raw file. The wheel is downloaded once into
``<repo>/.cache/`` (git-ignored) and only read as a zip archive: the package is never installed or
imported.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import extract, func, select

from kpi.data import schema
from kpi.data.importer import import_csv

CACHE = Path(__file__).resolve().parents[1] / ".cache"
WHEEL = "Lifetimes==0.11.3"
MEMBER = "lifetimes/datasets/CDNOW_master.txt"


def _wheel() -> Path | None:
    found = sorted(p for p in CACHE.glob("*.whl") if p.name.lower().startswith("lifetimes-0.11.3-"))
    return found[0] if found else None


@pytest.fixture(scope="session")
def cdnow_raw() -> bytes:
    wheel = _wheel()
    if wheel is None:
        CACHE.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            WHEEL,
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(CACHE),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            problem = None if proc.returncode == 0 else (proc.stderr or proc.stdout).strip()[-500:]
        except (OSError, subprocess.TimeoutExpired) as exc:
            problem = str(exc)
        wheel = _wheel()
        if wheel is None:
            message = f"could not download {WHEEL} from PyPI for the CDNOW data: {problem}"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(MEMBER)


@pytest.fixture(scope="session")
def cdnow(cdnow_raw) -> pd.DataFrame:
    """The purchases: customer_id (text, as written), date (YYYYMMDD), number_of_cds, dollar_value."""
    df = pd.read_csv(
        io.BytesIO(cdnow_raw),
        sep=r"\s+",
        header=None,
        names=["customer_id", "date", "number_of_cds", "dollar_value"],
        dtype=str,
    )
    df = df[df["date"].str.fullmatch(r"\d{8}")].reset_index(drop=True)  # the copy in the wheel has a header
    df["dollar_value"] = df["dollar_value"].astype(float)
    assert len(df) == 69659 and df["customer_id"].nunique() == 23570
    return df


def _expected(df: pd.DataFrame) -> pd.DataFrame:
    """Monthly KPIs computed from the raw file, independently of the importer and the database."""
    month = df["date"].str[:6]
    out = pd.DataFrame(
        {"orders": df.groupby(month).size(), "revenue": df.groupby(month)["dollar_value"].sum()}
    )
    out["aov"] = out["revenue"] / out["orders"]
    first = df.groupby("customer_id")["date"].min().str[:6]
    out["new_customers"] = first.value_counts()
    return out.fillna({"new_customers": 0}).astype({"new_customers": int}).sort_index()


def _from_database(engine) -> pd.DataFrame:
    o, c = schema.orders, schema.customers
    y, m = extract("year", o.c.placed_at), extract("month", o.c.placed_at)
    monthly = (
        select(
            y.label("y"), m.label("m"), func.count().label("orders"), func.sum(o.c.subtotal).label("revenue")
        )
        .where(o.c.status != "cancelled")
        .group_by(y, m)
    )
    cy, cm = extract("year", c.c.first_order_at), extract("month", c.c.first_order_at)
    new = (
        select(cy.label("y"), cm.label("m"), func.count().label("new_customers"))
        .where(c.c.first_order_at.is_not(None))
        .group_by(cy, cm)
    )
    with engine.connect() as conn:
        sales = {
            f"{int(r.y):04d}{int(r.m):02d}": (int(r.orders), float(r.revenue)) for r in conn.execute(monthly)
        }
        firsts = {f"{int(r.y):04d}{int(r.m):02d}": int(r.new_customers) for r in conn.execute(new)}
    out = pd.DataFrame.from_dict(sales, orient="index", columns=["orders", "revenue"])
    out["new_customers"] = pd.Series(firsts).reindex(out.index).fillna(0).astype(int)
    out["aov"] = out["revenue"] / out["orders"]
    return out.sort_index()


def test_cdnow_monthly_kpis_match_the_raw_file(cdnow, source_engine, tmp_path):
    canonical = pd.DataFrame(
        {
            "order_id": (cdnow.index + 1).astype(str),
            "customer_id": cdnow["customer_id"],
            "placed_at": cdnow["date"].str[:4] + "-" + cdnow["date"].str[4:6] + "-" + cdnow["date"].str[6:],
            "subtotal": cdnow["dollar_value"].map("{:.2f}".format),
            "currency": "USD",
        }
    )
    path = tmp_path / "cdnow_orders.csv"
    canonical.to_csv(path, index=False)

    result = import_csv(source_engine, path, "orders", tz=ZoneInfo("UTC"))

    assert (result.rows_read, result.inserted, result.updated, result.unchanged) == (69659, 69659, 0, 0)
    assert result.per_table["customers"]["inserted"] == 23570
    expected, got = _expected(cdnow), _from_database(source_engine)
    assert list(got.index) == list(expected.index) and len(got) == 18  # 1997-01 .. 1998-06
    assert (got["orders"] == expected["orders"]).all()
    assert (got["new_customers"] == expected["new_customers"]).all()
    assert got["new_customers"].sum() == 23570
    assert (got["revenue"] - expected["revenue"]).abs().max() < 0.01
    assert (got["aov"] - expected["aov"]).abs().max() < 0.01
    # the whole file again: nothing to do
    again = import_csv(source_engine, path, "orders", tz=ZoneInfo("UTC"))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 69659)
