"""Dimension values come from the data: read once, read again after the TTL or as soon as an import is seen,
and named in every language (country names from Babel, the words of config/dimensions.yaml)."""

from __future__ import annotations

from kpi.metrics.values import VERSION_EVERY, DimensionValues, load_aliases


def test_values_are_read_again_after_the_ttl_or_a_new_import():
    now = [0.0]
    reads = []
    data = {"channel": ["email"]}
    version = [1]

    def load():
        reads.append(now[0])
        return dict(data)

    values = DimensionValues(load, ttl=600, clock=lambda: now[0], version=lambda: version[0])
    assert values.values("channel") == ("email",)
    data["channel"] = ["email", "tiktok"]
    now[0] = 10
    assert values.values("channel") == ("email",)  # cached
    version[0] = 2  # an import happened (in any process)
    now[0] = 10 + VERSION_EVERY
    assert values.values("channel") == ("email", "tiktok")
    now[0] += 599
    assert len(reads) == 2
    now[0] += VERSION_EVERY + 600  # the TTL, with no import
    values.values("channel")
    assert len(reads) == 3


def test_a_word_counts_only_for_a_value_the_data_holds(tmp_path):
    path = tmp_path / "dimensions.yaml"
    path.write_text("channel:\n  paid_search: [ads, google ads]\n  tiktok: [tik tok]\n", encoding="utf-8")
    values = DimensionValues(lambda: {"channel": ["paid_search", "email"], "country": ["FR", "DE"]},
                             aliases=load_aliases(path))
    assert values.lookup("Google Ads") == [("channel", "paid_search")]
    assert values.lookup("tik tok") == []  # the shop has no TikTok channel
    assert values.lookup("Allemagne") == values.lookup("Deutschland") == values.lookup("germany") == [("country", "DE")]
    assert values.lookup("Spain") == []  # a country, but not one of the shop's
    assert values.value("country", "france") == "FR" and values.value("channel", "EMAIL") == "email"
    assert values.closest("emial", "channel", fallback=False) == ["email"]
