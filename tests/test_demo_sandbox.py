"""``kpibot demo``: a fresh machine, no Slack, no configuration; answers in the terminal."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from bot.demo import run_demo
from kpi.services import Services
from kpi.settings import Settings

CONFIG = Path(__file__).resolve().parent.parent / "config"


def test_demo_answers_piped_commands_share_and_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'kpibot.db'}"
    services = Services(Settings(database_url=url, source_url=url, config_dir=CONFIG))
    out = io.StringIO()
    stdin = io.StringIO("/kpi conversion\n/kpi aov by channel\nshare\nhome\nlang fr\n/kpi taux de retour\n/kpi convresion\nquit\n")
    assert run_demo(services, interactive=False, days=40, orders_per_day=30, stdin=stdin, out=out) == 0
    text = out.getvalue()
    assert "demo shop data" in text and "orders" in text
    assert "Conversion rate" in text and "based on" in text
    assert "By channel" in text and "paid_search" in text
    assert "#general:" in text and "Shared by" in text
    assert "Your KPIs" in text
    assert "Taux de retour" in text
    assert "conversion" in text.split("/kpi convresion")[1]
    charts = list((tmp_path / "charts").glob("*.png"))
    assert charts and all(c.read_bytes()[:4] == b"\x89PNG" for c in charts)
    assert "Traceback" not in text


def test_demo_command_from_a_pipe(tmp_path):
    env = {"PATH": "", "HOME": str(tmp_path), "KPIBOT_CHART_PROCESSES": "0"}
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--days", "20", "--orders-per-day", "20"],
                          input="/kpi orders\n", capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Orders" in proc.stdout and "acknowledged in" in proc.stdout
    assert (tmp_path / "kpibot.db").exists()


def test_the_german_user_is_answered_in_german(tmp_path, monkeypatch):
    """``lang de`` asks as greta (Slack locale de-DE): the answer and the sandbox's own notes are German."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'kpibot.db'}"
    services = Services(Settings(database_url=url, source_url=url, config_dir=CONFIG))
    out = io.StringIO()
    stdin = io.StringIO("lang de\n/kpi conversion\nlang en\n/kpi conversion\nquit\n")
    assert run_demo(services, interactive=False, days=40, orders_per_day=30, stdin=stdin, out=out) == 0
    text = out.getvalue()
    german, english = text.split("slack> lang de")[1].split("slack> lang en")
    assert "greta" in german and "de-DE" in german and "(bestätigt in" in german
    header = german.split("Konversionsrate\n", 1)[1].splitlines()[0]
    assert header.startswith("═")  # the answer's header, a Slack header block: the German KPI name
    assert "Conversion rate" not in german
    assert "Conversion rate" in english and "(acknowledged in" in english
    assert "Traceback" not in text
