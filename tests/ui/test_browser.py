"""The Dagster UI, tried as a new user would, in headless Chromium (Debian's chromium +
chromedriver, driven by selenium).

A real ``dagster dev`` (webserver + daemon) runs on 127.0.0.1 against a temp DAGSTER_HOME with
the project's dagster.yaml and ``EM_PROFILE=smoke`` (tiny sizes). The data layer and registry
are materialized first from the command line (``python -m em_assets run --data-only``, as the
README says), then, in the browser: open the asset graph, filter it to the model chain, launch
the chain for one partition (SmolLM2 x base) from the launch dialog (after confirming Dagster's note
that the opt-in sets, jailbroken and evil numbers, are not materialized), wait for the run's
success, materialize ``summary`` from its page, and find the plot and the cost metadata on it.
Screenshots of every step go to ``EM_UI_SCREENSHOTS`` (default ``data/ui_screenshots``).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PARTITION_CHAIN = 'key:"fine_tuned_model"+ and not key:"summary"'


def _browser() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dagster_ui(tmp_path):
    """``dagster dev`` on a free local port; yields (url, its log file); stops the process group after."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")  # its relative paths resolve in home
    data = tmp_path / "data"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "EM_PROFILE": "smoke",
        "EM_DATA_DIR": str(data),
        "EM_DUCKDB_PATH": str(data / "warehouse" / "em.duckdb"),
        "EM_MODEL_CACHE": os.environ.get("EM_MODEL_CACHE") or str(REPO / "data" / "model_cache"),
    }
    env.pop("EM_OPERATIONS_AUTOSTART", None)
    cli = subprocess.run(
        [sys.executable, "-m", "em_assets", "run", "--data-only"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    port = _free_port()
    log = (tmp_path / "dagster_dev.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2).read()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "dagster_dev.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "dagster dev did not answer within 180 s"
                time.sleep(1)
        yield url, tmp_path / "dagster_dev.log"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture
def browser():
    found = _browser()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium and chromedriver for the UI test (scripts/install.sh installs them)")
        pytest.skip("chromium + chromedriver not found (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(argument)
    options.binary_location = found[0]
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """Small waits and clicks over the Dagster UI; every step saves a numbered screenshot."""

    def __init__(self, driver, url: str, shots: Path) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.url, self.shots, self.By, self.Wait = driver, url, shots, By, WebDriverWait
        self.n = 0

    def shot(self, name: str) -> Path:
        self.n += 1
        path = self.shots / f"{self.n:02d}_{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)
        self.wait_text("Lineage")  # the left navigation: the app has rendered
        self.dismiss_community_prompt()

    def dismiss_community_prompt(self) -> None:
        """Dagster's "Join the Dagster community" dialog can open over a fresh browser's first
        page and take the next click; a new user skips it."""
        time.sleep(1)
        if self.find_text("Join the Dagster community"):
            self.click_button("Skip")
            time.sleep(0.5)
        self.dismiss_welcome()

    def dismiss_welcome(self) -> None:
        # The first visit shows a "Join the Dagster community" dialog.
        time.sleep(1)
        for button in self.driver.find_elements(self.By.XPATH, "//button[normalize-space()='Skip']"):
            button.click()

    def find_text(self, text: str, exact: bool = True):
        test = f"normalize-space(text())='{text}'" if exact else f"contains(normalize-space(.),'{text}')"
        from selenium.common.exceptions import StaleElementReferenceException

        shown = []
        for element in self.driver.find_elements(self.By.XPATH, f"//*[{test}]"):
            try:
                if element.is_displayed():
                    shown.append(element)
            except StaleElementReferenceException:  # re-rendered while we looked
                continue
        return shown

    def wait_text(self, text: str, timeout: float = 60, exact: bool = True):
        return self.Wait(self.driver, timeout, poll_frequency=0.5).until(
            lambda _: (self.find_text(text, exact) or [None])[0], message=f"text {text!r} not shown"
        )

    def click_text(self, text: str, timeout: float = 60) -> None:
        """Click the element showing ``text``; again if the UI re-rendered it between finding and
        clicking (a dropdown filling in)."""
        from selenium.common.exceptions import StaleElementReferenceException

        deadline = time.monotonic() + timeout
        while True:
            try:
                self.wait_text(text, timeout).click()
                return
            except StaleElementReferenceException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def click_button(self, label: str, timeout: float = 30) -> None:
        xpath = f"//button[contains(normalize-space(.),'{label}') and not(@disabled)]"
        self.Wait(self.driver, timeout, poll_frequency=0.5).until(
            lambda d: [b for b in d.find_elements(self.By.XPATH, xpath) if b.is_displayed()],
            message=f"button {label!r}",
        )[0].click()

    def pick_partition(self, picker: int, option: str, tries: int = 3) -> None:
        """Open one of the launch dialog's partition dropdowns (by index among those still
        unset) and choose ``option``. A click that lands while the dialog is still loading its
        partitions opens nothing, so the dropdown is reopened a few times before giving up."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.keys import Keys

        for attempt in range(tries):
            self.wait_text("Select a partition or create one")
            self.find_text("Select a partition or create one")[picker].click()
            try:
                self.click_text(option, timeout=20)
                break
            except TimeoutException:
                self.shot(f"no_{option}_in_dropdown")
                if attempt == tries - 1:
                    raise
                self.driver.find_element(self.By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
                time.sleep(1)
        self.driver.find_element(self.By.TAG_NAME, "body").send_keys(Keys.ESCAPE)  # close the dropdown
        time.sleep(0.5)

    def body(self) -> str:
        return self.driver.find_element(self.By.TAG_NAME, "body").text

    def follow_launched_run(self, timeout: float = 900) -> str:
        """Open the run from the "Launched run ..." toast and wait until it ends; its status."""
        self.wait_text("Launched run", exact=False)
        # The toast's "View" link carries the run's full id.
        link = self.Wait(self.driver, 30, poll_frequency=0.25).until(
            lambda d: [
                a for a in d.find_elements(self.By.XPATH, "//a[contains(@href,'/runs/')]") if a.text.strip() == "View"
            ],
            message="the toast's View link",
        )[0]
        self.driver.get(link.get_attribute("href"))
        status = self.Wait(self.driver, timeout, poll_frequency=2).until(
            lambda _: next((s for s in ("Success", "Failure", "Canceled") if self.find_text(s)), None),
            message=f"the run did not end within {timeout} s",
        )
        time.sleep(1)
        return status


def test_a_new_user_materializes_a_partition_and_finds_the_report(dagster_ui, browser):
    from selenium.webdriver.common.keys import Keys

    url, dev_log = dagster_ui
    shots = Path(os.environ.get("EM_UI_SCREENSHOTS") or REPO / "data" / "ui_screenshots")
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    page = Page(browser, url, shots)

    # 1. The asset graph: every stage's group is there.
    page.open("/asset-groups")
    for group in ("datasets", "training", "evaluation", "reporting"):
        page.wait_text(group)
    page.shot("asset_graph")

    # 2. Filter to the model chain and open the launch dialog.
    page.dismiss_community_prompt()
    editor = page.wait_text("Search and filter assets")
    editor.find_element(page.By.XPATH, "./ancestor::div[contains(@class,'CodeMirror')][1]").click()
    typing = browser.switch_to.active_element
    typing.send_keys(PARTITION_CHAIN)
    typing.send_keys(Keys.ENTER)
    time.sleep(2)
    page.shot("model_chain")
    page.click_button("Materialize all")
    # fine_tuned_model reads every condition's set; the opt-in ones (jailbroken, evil numbers) are
    # not in the data layer a default run builds, so Dagster asks first, naming exactly those two.
    page.wait_text("Are you sure?")
    page.shot("unmaterialized_upstreams")
    dialog = page.body()
    shown = dialog[dialog.index("Are you sure?") : dialog.index("Confirm")]
    assert sorted(n for n in shown.split() if n.endswith("_dataset")) == ["evil_numbers_dataset", "jailbroken_dataset"]
    page.click_button("Confirm")
    page.wait_text("Launch runs to materialize 5 assets")  # fine-tune, sample, judge, code check, probes

    # 3. One partition: SmolLM2 x base.
    page.pick_partition(0, "smollm2-135m-instruct")
    page.pick_partition(-1, "base")
    page.wait_text("1 partition")
    page.shot("launch_dialog")
    page.click_button("Launch 1 run")
    status = page.follow_launched_run()
    page.shot("partition_run")
    assert status == "Success", dev_log.read_text()[-4000:]

    # 4. The summary, materialized from its own page.
    page.open("/assets/summary")
    page.wait_text("summary")
    page.click_button("Materialize")
    status = page.follow_launched_run(timeout=300)
    page.shot("summary_run")
    assert status == "Success", dev_log.read_text()[-4000:]
    page.open("/assets/summary")
    page.wait_text("llm_cost_by_asset")
    page.shot("summary_asset")
    text = page.body()
    # The cost metadata: the total and the per-asset ledger table with this partition's calls.
    for key in ("llm_calls", "llm_cost_usd", "llm_cost_by_asset", "report_html", "plot_png"):
        assert key in text, key
    assert "sampled_responses smollm2-135m-instruct|base" in text

    # The plot: the "plot" entry opens its markdown, an inline PNG that the browser decodes.
    row = page.wait_text("plot").find_element(page.By.XPATH, "./ancestor::tr[1]")
    link = row.find_element(page.By.XPATH, ".//a[contains(normalize-space(.),'Show Markdown')]")
    browser.execute_script("arguments[0].scrollIntoView()", link)
    link.click()
    image = page.Wait(browser, 30, poll_frequency=0.5).until(
        lambda d: [
            i for i in d.find_elements(page.By.CSS_SELECTOR, "img[src^='data:image/png;base64,']") if i.is_displayed()
        ],
        message="the plot image",
    )[0]
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 200
    time.sleep(1)  # the dialog fades in
    page.shot("summary_plot")
