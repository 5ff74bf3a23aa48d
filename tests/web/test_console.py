"""The console in headless Chromium, served by a real worker of apps/user_spending.py.

Known orders go through a real broker and a real ``streamflow worker`` subprocess; once the
worker's table answers the exact totals, the browser must draw the topology, look keys up,
page through the table and show per-topic throughput.

Needs the Debian packages ``chromium`` and ``chromium-driver``
(``apt-get install -y chromium chromium-driver``); without them the test fails and says so.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.support import AppRun, WorkerProcess, expected_totals, generate

pytestmark = pytest.mark.kafka

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--window-size=1400,1000",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TABLE = "user-spending-store"
USERS = 30  # more than one page of the browser (20 keys)
ORDERS = 600


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    if not CHROMEDRIVER.exists():
        pytest.fail(
            f"{CHROMEDRIVER} is missing: install it with `apt-get install -y chromium "
            "chromium-driver`"
        )
    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _wait_for_totals(worker: WorkerProcess, base: str, totals: dict[str, Decimal]) -> None:
    """Poll the worker's table until every user's value is the exact expected total."""
    deadline = time.monotonic() + 180
    waiting = dict(totals)
    last = None
    while waiting and time.monotonic() < deadline:
        assert worker.process.poll() is None, f"worker exited:\n{worker.log()[-3000:]}"
        for user, total in list(waiting.items()):
            try:
                status, body = _get(f"{base}/tables/{quote(TABLE)}/{quote(user)}")
            except OSError as exc:  # the web server is not listening yet
                last = exc
                break
            last = (status, body)
            if status == 200 and Decimal(str(body["value"])) == total:
                del waiting[user]
        time.sleep(0.5)
    assert not waiting, f"{len(waiting)} users never reached their totals; last: {last}"


def _wait(driver: WebDriver, condition, message: str, timeout: float = 15):
    return WebDriverWait(driver, timeout).until(lambda d: condition(d), message)


def _lookup_result(driver: WebDriver) -> str:
    """Wait until the lookup is answered; its state (``found`` or ``error``)."""
    return _wait(
        driver,
        lambda d: (
            d.find_element(By.ID, "lookup-result").get_attribute("data-state") in ("found", "error")
            and d.find_element(By.ID, "lookup-result").get_attribute("data-state")
        ),
        "the lookup never answered",
    )


def _lookup(driver: WebDriver, key: str) -> str:
    field = driver.find_element(By.ID, "lookup-key")
    field.clear()
    field.send_keys(key)
    driver.find_element(By.ID, "lookup-button").click()
    return _lookup_result(driver)


def _browse_page(driver: WebDriver, button: str) -> dict[str, Decimal]:
    items = driver.find_element(By.ID, "browse-items")
    driver.execute_script("arguments[0].dataset.state = 'stale'", items)
    driver.find_element(By.ID, button).click()
    _wait(driver, lambda d: items.get_attribute("data-state") == "loaded", "no page loaded")
    rows = items.find_elements(By.CSS_SELECTOR, "tbody tr[data-key]")
    return {
        row.get_attribute("data-key"): Decimal(row.find_element(By.CSS_SELECTOR, ".value").text)
        for row in rows
    }


# One broker is enough here: what is under test is the page and the worker's web API, and
# broker behaviour is covered by tests/integration over both brokers. The embedded broker
# needs nothing but Python, so the browser test runs wherever the package does.
def test_console_against_a_real_worker(embedded_bootstrap, tmp_path, browser):
    run = AppRun(embedded_bootstrap, tmp_path / "state")
    orders = generate(ORDERS, USERS, seed=31)
    totals, _ = expected_totals(orders)
    assert len(totals) > 20, "the test needs more than one page of keys"
    run.produce_orders(orders)
    worker = run.worker().start()
    base = f"http://127.0.0.1:{worker.web_port}"
    try:
        _wait_for_totals(worker, base, totals)
        browser.get(base + "/")
        _check_topology(browser, run)
        _check_lookups(browser, totals)
        _check_browsing(browser, totals)
        _check_throughput(browser, run, orders)
        orders += _check_live_rates(browser, run, len(orders))
        totals, _ = expected_totals(orders)
        _wait_for_totals(worker, base, totals)
        _check_lookup_from_the_address(browser, base, totals)
        _save_screenshot(browser, run)
    finally:
        assert worker.stop() == 0


def _check_topology(browser: WebDriver, run: AppRun) -> None:
    nodes = _wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#topology svg g.node[data-id]"),
        "the topology was not drawn",
    )
    kinds = {node.get_attribute("data-id"): node.get_attribute("data-kind") for node in nodes}
    source = f"topic:{run.orders_topic}"
    repartition = f"topic:{run.app_id}-orders-by-user-repartition"
    table = f"table:{TABLE}"
    sink = f"topic:{run.summary_topic}"
    assert kinds[source] == "source"
    assert kinds[repartition] == "repartition"
    assert kinds[table] == "table"
    assert kinds[sink] == "sink"
    assert len(kinds) == 8, kinds

    def centre(node_id: str) -> float:
        selector = f'#topology svg g.node[data-id="{node_id}"]'
        rect = browser.find_element(By.CSS_SELECTOR, selector).rect
        return rect["x"] + rect["width"] / 2

    # Layered left to right by longest path from the source.
    assert centre(source) < centre(repartition) < centre("step:user-spending-store")
    assert centre("step:user-spending-store") < centre(table) < centre(sink)
    assert centre(table) == pytest.approx(centre("step:map_values-7"), abs=1)
    arrows = browser.find_elements(By.CSS_SELECTOR, "#topology svg path.edge")
    assert {(a.get_attribute("data-from"), a.get_attribute("data-to")) for a in arrows} >= {
        ("step:select_key-3", repartition),
        (repartition, "step:user-spending-store"),
        ("step:user-spending-store", table),
    }


def _check_lookups(browser: WebDriver, totals: dict[str, Decimal]) -> None:
    _wait(
        browser,
        lambda d: (
            [o.text for o in Select(d.find_element(By.ID, "lookup-table")).options] == [TABLE]
        ),
        "the table list was not loaded",
    )
    richest = max(totals, key=totals.get)
    assert _lookup(browser, richest) == "found"
    result = browser.find_element(By.ID, "lookup-result")
    assert result.find_element(By.CSS_SELECTOR, "[data-field=key]").text == richest
    assert (
        Decimal(result.find_element(By.CSS_SELECTOR, "[data-field=value]").text)
        == (totals[richest])
    )
    assert _lookup(browser, "nobody") == "error"
    assert result.text.startswith("404: "), result.text
    assert "nobody" in result.text


def _check_browsing(browser: WebDriver, totals: dict[str, Decimal]) -> None:
    first = _browse_page(browser, "browse-button")
    assert len(first) == 20
    assert browser.find_element(By.ID, "browse-next").is_enabled()
    second = _browse_page(browser, "browse-next")
    assert not set(first) & set(second)
    assert {**first, **second} == totals
    assert not browser.find_element(By.ID, "browse-next").is_enabled()

    prefix = min(totals)[:-1]  # e.g. "user-00": the users 000 to 009
    browser.find_element(By.ID, "browse-prefix").send_keys(prefix)
    page = _browse_page(browser, "browse-button")
    assert page == {user: total for user, total in totals.items() if user.startswith(prefix)}


def _check_throughput(browser: WebDriver, run: AppRun, orders: list[dict]) -> None:
    row = f'#throughput tbody tr[data-topic="{run.orders_topic}"]'
    cells = _wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, f"{row} td"),
        "no throughput row for the source topic",
    )
    assert cells[1].text == "source"
    # Totals are consumed records: every order was read once. Rates need two samples.
    assert int(cells[5].text.replace(",", "")) == len(orders)
    _wait(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, f"{row} td.rate-in").text != "—",
        "no rate after two samples",
        timeout=10,
    )
    assert float(browser.find_element(By.CSS_SELECTOR, f"{row} td.rate-in").text) == 0
    roles = {
        r.get_attribute("data-topic"): r.get_attribute("data-role")
        for r in browser.find_elements(By.CSS_SELECTOR, "#throughput tbody tr")
    }
    assert roles[f"{run.app_id}-orders-by-user-repartition"] == "repartition"
    assert roles[run.summary_topic] == "sink"


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _check_live_rates(browser: WebDriver, run: AppRun, consumed: int) -> list[dict]:
    """Produce more orders while the page is open: the source topic shows a rate, then the
    new total. Returns the orders produced."""
    more = generate(400, USERS, seed=32)
    run.produce_orders(more)
    row = f'#throughput tbody tr[data-topic="{run.orders_topic}"]'
    rates, total = [0.0], consumed
    deadline = time.monotonic() + 60
    # A rate stays on the page for a whole refresh interval (2 s): polling 8 times as
    # often cannot miss one.
    while time.monotonic() < deadline and not (total == consumed + len(more) and max(rates) > 0):
        rate = browser.find_element(By.CSS_SELECTOR, f"{row} td.rate-in").text
        if rate != "—":
            rates.append(_number(rate))
        total = int(_number(browser.find_elements(By.CSS_SELECTOR, f"{row} td")[5].text))
        time.sleep(0.25)
    assert total == consumed + len(more)
    assert max(rates) > 0, rates
    return more


def _check_lookup_from_the_address(
    browser: WebDriver, base: str, totals: dict[str, Decimal]
) -> None:
    user = min(totals)
    browser.get(f"{base}/?table={quote(TABLE)}&key={quote(user)}")
    assert _lookup_result(browser) == "found"
    assert browser.find_element(By.ID, "lookup-key").get_attribute("value") == user
    value = browser.find_element(By.CSS_SELECTOR, "#lookup-result [data-field=value]").text
    assert Decimal(value) == totals[user]


def _save_screenshot(browser: WebDriver, run: AppRun) -> None:
    """The whole page, once it shows rates, a browsed page and a found key."""
    _browse_page(browser, "browse-button")
    _wait(
        browser,
        lambda d: (
            d.find_element(
                By.CSS_SELECTOR, f'#throughput tr[data-topic="{run.orders_topic}"] td.rate-in'
            ).text
            != "—"
        ),
        "no rate after two samples",
        timeout=10,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1400, max(height, 800))
    assert browser.save_screenshot(str(ARTIFACTS / "console.png"))
