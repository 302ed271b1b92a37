"""The console's runs page over a store of many runs (what benchmark P9 times, ``bench/p9_console.py``):
the first page and the state filter come from the API's paging in SQL, the totals are the store's,
and the page records when it was drawn (the ``console:rendered`` mark P9 reads). No time is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.p9_console import PAGES, console_server, expected_total, fill, measure
from tests.browser import browser_available

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(browser_available() is not None, reason=str(browser_available())),
]
RUNS = 3_000


@pytest.mark.leaves_unfinished_runs  # a synthetic store, RUNNING runs included
def test_the_runs_page_pages_and_filters_a_large_store_in_sql(tmp_path: Path) -> None:
    home = tmp_path / "dh"
    home.mkdir()
    fill(home, RUNS)
    with console_server(home, tmp_path / "server.log") as url:
        figures = measure(url, RUNS, samples=1, screenshots=tmp_path / "screenshots")
    for name, _route, query in PAGES:
        assert figures["totals"][name] == f"{expected_total(RUNS, query.get('state'))} runs"
        assert figures["ms"][f"browser_{name}"] > 0 and figures["ms"][f"api_{name}"] > 0  # both were measured
