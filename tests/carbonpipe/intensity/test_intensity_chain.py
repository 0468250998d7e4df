"""The chain: outages fall through within the timeout and the answer names its provider."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from carbonpipe.intensity.chain import ProviderChain, build_chain
from carbonpipe.intensity.errors import NoProviderAnswered

from .conftest import FixtureServer, Reply, fixture_reply


def test_500_outage_falls_through_to_the_next_provider(
    server: FixtureServer, fixtures_dir: Path, make_settings
) -> None:
    server.route(
        r"/.*",
        fixture_reply(fixtures_dir / "uk-national-grid" / "error-500-resource-not-found.json", 500),
    )
    s = make_settings(uk_base_url=server.url, providers="uk,trace,static", http_timeout_s=1.0)
    t0 = time.monotonic()
    p = build_chain(s).current("GB")
    assert time.monotonic() - t0 < s.http_timeout_s + 0.5
    assert p.provider in ("trace", "static")  # trace when ../shared has gb-2020.csv


def test_hanging_provider_falls_through_within_the_timeout(
    server: FixtureServer, make_settings
) -> None:
    server.route(r"/.*", Reply(200, b"{}", delay_s=5.0))
    s = make_settings(uk_base_url=server.url, providers="uk,static", http_timeout_s=0.5)
    t0 = time.monotonic()
    p = build_chain(s).current("GB")
    assert time.monotonic() - t0 < 1.2
    assert (p.provider, p.kind) == ("static", "fallback")


def test_first_answer_wins_and_names_its_provider(
    server: FixtureServer, fixtures_dir: Path, make_settings
) -> None:
    server.route(
        r"/intensity",
        fixture_reply(fixtures_dir / "uk-national-grid" / "intensity-current.docs.json"),
    )
    s = make_settings(uk_base_url=server.url, providers="uk,static")
    chain = build_chain(s)
    assert [p.name for p in chain.providers] == ["uk", "static"]
    assert chain.current("GB").provider == "uk"
    # a zone uk does not serve falls through without a request
    assert chain.current("FR").provider == "static" and server.hits(r"/.*") == 1


def test_forecast_falls_through_on_empty_and_errors(make_settings) -> None:
    s = make_settings(providers="electricitymaps,watttime,static")  # no keys: AuthError each
    fc = build_chain(s).forecast("DE", timedelta(hours=6))
    assert [p.provider for p in fc] == ["static"]


def test_nobody_answers_lists_every_failure(make_settings) -> None:
    s = make_settings(providers="electricitymaps,static")
    with pytest.raises(NoProviderAnswered) as err:
        build_chain(s).current("ATLANTIS")
    msg = str(err.value)
    assert "electricitymaps" in msg and "static" in msg
    assert "CARBONPIPE_ELECTRICITYMAPS_TOKEN" in msg
    assert [name for name, _ in err.value.errors] == ["electricitymaps", "static"]
    with pytest.raises(NoProviderAnswered, match="no providers"):
        ProviderChain([]).current("GB")
