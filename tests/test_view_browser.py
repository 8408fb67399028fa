"""`agentsynth view` in a real browser: Debian's headless Chromium driven with selenium.

One browser for the module. Runs → a run → an episode, the transcript and badges checked
against the store; filters change the list and its count; a reply holding a script tag is shown
as text and runs nothing; a live run's page counts new episodes without a reload; a wrong or
missing token is refused on a non-local bind. Skipped (with the reason) when chromium,
chromedriver or selenium is missing: CI installs them (.ci/run: apt chromium chromium-driver;
selenium comes with the dev extra).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsynth.store.connection import connect
from conftest import ROOT, agentsynth_serve, q
from view_site import IMG, SCRIPT, Site, Viewer, build_store, live_spec, viewer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build_store(tmp_path_factory.mktemp("view-browser"))


@pytest.fixture(scope="module")
def view(site: Site) -> Iterator[Viewer]:
    with viewer(site.store) as v:
        yield v


def count(browser) -> int:
    return int(browser.find_element(By.CSS_SELECTOR, "[data-field=matching]").text.replace(",", ""))


def test_runs_then_a_run_then_an_episode_shows_the_stored_transcript_and_badges(browser, site: Site, view: Viewer) -> None:
    browser.get(view.url + "/")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-run="{site.run_id}"]')
    assert row.find_element(By.CSS_SELECTOR, "[data-field=status]").text == "completed"
    row.find_element(By.LINK_TEXT, "view-demo").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, "table.episodes"))
    assert count(browser) == q(site.store, "SELECT count(*) FROM episodes")[0][0]
    Select(browser.find_element(By.NAME, "env")).select_by_value("tools")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: "env=tools" in b.current_url)
    browser.find_element(By.LINK_TEXT, site.tools).click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".transcript"))
    msgs = q(site.store, "SELECT role, content FROM messages WHERE episode_id = ? ORDER BY position", [site.tools])
    shown = browser.find_elements(By.CSS_SELECTOR, ".transcript .msg")
    assert [m.get_attribute("data-role") for m in shown] == [r for r, _ in msgs]
    for m, (_, content) in zip(shown, msgs):
        if content:
            assert m.find_element(By.CSS_SELECTOR, "pre.content").text == content.strip()
    sigs = q(site.store, "SELECT s.turn, s.name, s.role, s.passed, t.source, t.openness FROM signals s "
                         "JOIN signal_types t USING (name) WHERE s.episode_id = ?", [site.tools])
    badges = browser.find_elements(By.CSS_SELECTOR, ".badges .badge")
    got = sorted((int(b.get_attribute("data-turn")), b.find_element(By.CSS_SELECTOR, ".signal-name").text,
                  b.find_element(By.CSS_SELECTOR, ".signal-role").text,
                  {"passed": True, "failed": False, "no verdict": None}[b.find_element(By.CSS_SELECTOR, ".signal-passed").text],
                  b.find_element(By.CSS_SELECTOR, "[data-label=source]").text.removeprefix("source: "),
                  b.find_element(By.CSS_SELECTOR, "[data-label=openness]").text) for b in badges)
    assert got == sorted(sigs)
    task = browser.find_element(By.CSS_SELECTOR, "details.task")
    answer = q(site.store, "SELECT answer FROM tasks JOIN episodes USING (task_id) WHERE episode_id = ?", [site.tools])[0][0]
    assert not task.find_element(By.CSS_SELECTOR, "pre.answer").is_displayed()  # behind the toggle
    task.find_element(By.TAG_NAME, "summary").click()
    assert task.find_element(By.CSS_SELECTOR, "pre.answer").text == answer


def test_filters_change_the_list_and_its_count(browser, site: Site, view: Viewer) -> None:
    browser.get(view.url + f"/runs/{site.run_id}?size=200")
    total = count(browser)
    Select(browser.find_element(By.NAME, "feedback")).select_by_value("hint")
    Select(browser.find_element(By.NAME, "last")).select_by_value("yes")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: "feedback=hint" in b.current_url)
    want = q(site.store, "SELECT count(*) FROM episodes WHERE feedback = 'hint' AND passed_last")[0][0]
    assert count(browser) == want < total
    rows = browser.find_elements(By.CSS_SELECTOR, "table.episodes tbody tr")
    assert len(rows) == want and all(r.find_elements(By.TAG_NAME, "td")[3].text == "hint" for r in rows)
    Select(browser.find_element(By.NAME, "signal")).select_by_value("format")
    Select(browser.find_element(By.NAME, "op")).select_by_value("failed")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: "signal=format" in b.current_url)
    want = q(site.store, "SELECT count(*) FROM episodes WHERE feedback = 'hint' AND passed_last AND episode_id IN "
                         "(SELECT episode_id FROM signals WHERE name = 'format' AND NOT passed)")[0][0]
    assert count(browser) == want


def test_a_reply_with_a_script_tag_is_text_and_runs_nothing(browser, site: Site, view: Viewer) -> None:
    browser.get(view.url + f"/episodes/{site.planted}")
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".transcript"))
    time.sleep(0.3)  # an onerror would have fired by now
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    assert browser.execute_script("return [typeof window.__pwned, typeof window.__pwned2]") == ["undefined", "undefined"]
    texts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".transcript pre.content")]
    assert any(SCRIPT in t and IMG in t for t in texts), texts  # the markup shows, as text
    assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script")
    assert SCRIPT in browser.find_element(By.CSS_SELECTOR, "p.error").text


def test_a_live_runs_page_counts_new_episodes_without_a_reload(browser, tmp_path: Path) -> None:
    store = tmp_path / "live.duckdb"
    with agentsynth_serve("--latency-ms", "150") as served:
        spec = live_spec(tmp_path, store, served.url, tasks=100)
        run = subprocess.Popen([sys.executable, "-m", "agentsynth", "run", str(spec), "-q"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not (store.exists() and _read(store, "SELECT count(*) FROM episodes")[0][0] > 0):
                assert run.poll() is None and time.monotonic() < deadline, "the run did not start"
                time.sleep(0.2)
            with viewer(store) as v:
                ((run_id,),) = _read(store, "SELECT run_id FROM runs")
                browser.get(v.url + f"/runs/{run_id}")
                first = count(browser)
                first_row = browser.find_element(By.CSS_SELECTOR, "table.episodes tbody a").text
                marker = browser.execute_script("window.__same_page = 1; return 1")  # gone if the page reloads
                WebDriverWait(browser, 60, poll_frequency=0.2).until(lambda b: count(b) > first)
                assert run.poll() is None, "the run ended before the page counted a new episode"
                assert browser.execute_script("return window.__same_page") == marker  # updated in place
                assert browser.find_element(By.CSS_SELECTOR, "[data-field=status]").text == "running"
                new = browser.find_element(By.CSS_SELECTOR, "a[data-new]")
                WebDriverWait(browser, 10).until(lambda b: new.is_displayed())
                assert "new episode" in new.text
                new.click()
                WebDriverWait(browser, 10).until(lambda b: b.execute_script("return window.__same_page") is None)
                assert browser.find_element(By.CSS_SELECTOR, "table.episodes tbody a").text != first_row  # newest on top
        finally:
            if run.poll() is None:
                run.terminate()
            run.wait(timeout=60)


def _read(store: Path, sql: str) -> list[tuple]:
    con = connect(store, read_only=True)  # waits out the run's writer, as every agentsynth reader does
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_wrong_or_missing_token_is_refused_on_a_non_local_bind(browser, site: Site) -> None:
    token = "browser-test-token-0123456789"
    with viewer(site.store, "--host", "0.0.0.0", "--token", token, ready_path="/favicon.ico", lines=2) as v:
        browser.delete_all_cookies()
        browser.get(v.url + "/")
        assert browser.find_element(By.TAG_NAME, "h1").text == "401 Token required"
        browser.get(v.url + "/?token=not-the-token-at-all")
        assert browser.find_element(By.TAG_NAME, "h1").text == "403 Wrong token"
        assert token not in browser.page_source
        browser.get(v.url + f"/?token={token}")
        assert browser.current_url == v.url + "/"  # the token left the address bar
        assert browser.find_element(By.TAG_NAME, "h1").text == "Runs"
        browser.find_element(By.LINK_TEXT, "view-demo").click()  # the cookie carries it from here
        WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, "table.episodes"))
        assert token not in browser.page_source
        assert browser.execute_script("return document.cookie") == ""  # HttpOnly: no script can read it
