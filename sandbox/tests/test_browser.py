"""A member's day in a real browser, over the demo member's ssh forwards from this machine
(the member's laptop here): the hub's login page, JupyterLab with the backtest notebook run
against the master's Dask cluster, the Dask panes and the memory limit inside JupyterLab,
the latest model report, the Luigi visualiser and the Dask scheduler's status page.

Chromium is Debian's (`.ci/run` installs it); nothing is downloaded at test time. A failed
step leaves screenshots of every open page in build/test-artifacts/sandbox-browser/.
SANDBOX_SCREENSHOTS=docs/images writes the README's screenshots of the main pages.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from conftest import CONTAINER, MEMBER, PROJECT, REUSE, ROOT, run, ssh

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect
PlaywrightTimeoutError = playwright.TimeoutError

CHROMIUM = Path("/usr/bin/chromium")
# Headless on a machine without a GPU, and quiet: without the background-networking
# flags Chromium keeps opening connections that a closed network refuses. Playwright
# starts it with a fresh temporary profile (user data dir) of its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HUB = "http://localhost:8000"
LAB = f"{HUB}/user/{MEMBER}/lab"
LUIGI = "http://localhost:8082/static/visualiser/index.html"
DASK_STATUS = "http://localhost:8787/status"
ARTIFACTS = ROOT / "build" / "test-artifacts" / "sandbox-browser"
SCREENSHOTS = os.environ.get("SANDBOX_SCREENSHOTS")
VIEWPORT = {"width": 1280, "height": 800}
# Readiness bounds (ms): a first spawn installs nothing but starts a server and a kernel.
SPAWN = 180_000
NOTEBOOK_RUN = 300_000
PAGE = 30_000
LUIGI_LISTS = 120_000
# A wrong password gets the hub's own message on its login page.
LOGIN_ERROR = "Invalid username or password"


@pytest.fixture(scope="module")
def browser(tunnel):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def screenshots_on_failure(request, browser):
    """Every open page of a failed test, as the member saw it, under build/test-artifacts/."""
    yield
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for c, context in enumerate(browser.contexts):
        for p, page in enumerate(context.pages):
            page.screenshot(path=ARTIFACTS / f"{request.node.name}-{c}-{p}.png", full_page=True)


def docs_screenshot(page, name: str) -> None:
    """The README's screenshot of a main page, when SANDBOX_SCREENSHOTS names a directory."""
    if not SCREENSHOTS:
        return
    target = ROOT / SCREENSHOTS / f"sandbox-{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=target)
    # A palette image is a fraction of the size and reads the same.
    from PIL import Image  # noqa: PLC0415

    with Image.open(target) as image:
        image.convert("RGB").quantize(colors=128).save(target, optimize=True)


@pytest.fixture(scope="module")
def password(sandbox):
    """The member's hub password, set on the master with `sudo passwd` as the README says."""
    chosen = f"Sb-{secrets.token_urlsafe(12)}-9"
    if REUSE:  # set by an earlier run: gone, as an admin resets a forgotten password
        reset = run(["docker", "exec", CONTAINER, "usermod", "--password", "*", MEMBER], 60)
        assert reset.returncode == 0, reset.stderr
    result = ssh("sudo", "passwd", MEMBER, input=f"{chosen}\n{chosen}\n")
    assert result.returncode == 0, result.stdout + result.stderr
    return chosen


def fill_login(page, password: str) -> None:
    page.goto(f"{HUB}/hub/login")
    page.locator("#username_input").fill(MEMBER)
    page.locator("#password_input").fill(password)


def test_wrong_password_is_refused_on_the_login_page(browser, password):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    fill_login(page, password + "x")
    page.locator("#login_submit").click()
    expect(page.locator(".login_error")).to_have_text(LOGIN_ERROR, timeout=PAGE)
    expect(page).to_have_url(re.compile(r"/hub/login"))
    context.close()


@pytest.fixture(scope="module")
def lab(browser, password):
    """The member's JupyterLab, reached through the hub's login page, in a fresh layout."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    fill_login(page, password)
    docs_screenshot(page, "hub-login")
    page.locator("#login_submit").click()
    expect(page.locator("#jp-main-statusbar")).to_be_visible(timeout=SPAWN)
    # A server kept from an earlier run restores its last layout; ?reset starts from none.
    page.goto(f"{LAB}?reset")
    expect(page.locator(".jp-Launcher")).to_be_visible(timeout=PAGE)
    yield page
    context.close()


def test_login_opens_the_jupyterlab_launcher(lab):
    expect(lab).to_have_url(re.compile(rf"^{re.escape(LAB)}"))
    expect(lab.locator(".jp-Launcher").get_by_text("Python 3 (ipykernel)").first).to_be_visible()


def api(page, path: str):
    """A JSON answer of the member's server, with the browser's own login."""
    response = page.request.get(f"{HUB}/user/{MEMBER}/{path}")
    assert response.ok, f"{path}: {response.status} {response.text()[:300]}"
    return response.json()


# A member checks the cluster from the notebook the way the role's README shows; the
# cell is not saved (the shared original is read-only).
CLUSTER_CELL = """from scoring.compute import get_client
from scoring.settings import get_settings

client = get_client(get_settings())
print("cluster", client.scheduler.address, "workers", len(client.scheduler_info()["workers"]),
      "sum", client.submit(sum, [1, 2, 3]).result())"""
CLUSTER_OUTPUT = re.compile(r"^cluster (\S+) workers ([1-9]\d*) sum 6$", re.MULTILINE)
# Every code cell has run (a number in its prompt) and the kernel is idle again.
RUN_FINISHED = """() => {
    const prompts = [...document.querySelectorAll(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt")]
        .map((prompt) => prompt.textContent.trim());
    const status = document.querySelector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator");
    return prompts.length > 0 && prompts.every((prompt) => /^\\[\\d+\\]:$/.test(prompt))
        && status !== null && status.dataset.status === "idle";
}"""
# Some cell is queued or has run: the run has started.
RUN_STARTED = """() => [
    ...document.querySelectorAll(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt"),
].some((prompt) => /\\[(\\*|\\d+)\\]/.test(prompt.textContent))"""
# A menu command that JupyterLab has not wired up yet is ignored: how often to ask again.
RUN_ALL_TRIES = 3
RUN_START = 15_000


def run_all_cells(lab) -> None:
    """Run > Run All Cells, asked again (a bounded number of times) if no cell starts."""
    for _ in range(RUN_ALL_TRIES):
        lab.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        item = lab.locator('.lm-Menu-item[data-command="runmenu:run-all"]')
        expect(item).to_be_visible(timeout=PAGE)
        item.click()
        try:
            lab.wait_for_function(RUN_STARTED, timeout=RUN_START)
        except PlaywrightTimeoutError:
            lab.keyboard.press("Escape")
        else:
            return
    raise AssertionError(f"Run > Run All Cells started no cell in {RUN_ALL_TRIES} tries")


def test_backtest_notebook_runs_against_the_cluster(lab):
    """From the shared notebooks, run top to bottom: every cell ran, figures, no errors."""
    listing = lab.locator(".jp-DirListing-content")
    for folder in ("shared-notebooks", "scoring", "backtest"):
        listing.get_by_text(folder, exact=True).dblclick()
    notebook_name = listing.get_by_text(re.compile(r"\.ipynb$")).first
    expect(notebook_name).to_be_visible(timeout=PAGE)
    path = f"shared-notebooks/scoring/backtest/{notebook_name.text_content()}"
    saved = api(lab, f"api/contents/{path}?content=1")
    code_cells = sum(cell["cell_type"] == "code" for cell in saved["content"]["cells"])
    assert not saved["writable"], f"{path} is writable: the shared originals are read-only"
    notebook_name.dblclick()
    panel = lab.locator(".jp-NotebookPanel")
    expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
        "data-status", "idle", timeout=SPAWN
    )
    panel.locator(".jp-Cell").last.click()
    lab.keyboard.press("Escape")
    lab.keyboard.press("b")
    lab.keyboard.press("Enter")
    lab.keyboard.insert_text(CLUSTER_CELL)
    run_all_cells(lab)
    lab.wait_for_function(RUN_FINISHED, timeout=NOTEBOOK_RUN)

    outputs = panel.locator(".jp-OutputArea-output").evaluate_all(
        "outputs => outputs.map((o) => [o.dataset.mimeType, o.textContent])"
    )
    # IPython shows an exception as a traceback on the error stream.
    errors = [text for mime, text in outputs if "Traceback (most recent call last)" in text]
    assert not errors, "error output:\n" + "\n\n".join(errors)
    prompts = panel.locator(".jp-CodeCell .jp-InputPrompt").evaluate_all(
        "prompts => prompts.map((p) => p.textContent.trim())"
    )
    assert len(prompts) == code_cells + 1, prompts
    assert all(re.fullmatch(r"\[\d+\]:", prompt) for prompt in prompts), prompts
    stdout = "".join(text for mime, text in outputs if mime == "application/vnd.jupyter.stdout")
    assert CLUSTER_OUTPUT.search(stdout), f"no answer from the cluster in:\n{stdout}"
    figures = panel.locator(".jp-OutputArea-output img")
    expect(figures.first).to_be_visible()
    sizes = figures.evaluate_all("images => images.map((i) => i.complete && i.naturalWidth)")
    assert all(sizes), f"figures that did not render: {sizes}"
    panel.locator(".jp-Cell").first.click()
    docs_screenshot(lab, "jupyterlab-notebook")


def test_no_news_pop_up(lab):
    """The notebook has run by now: a news question would have popped up long before."""
    defaults = api(lab, "lab/api/settings/@jupyterlab/apputils-extension:notification")
    properties = defaults["schema"]["properties"]
    assert properties["fetchNews"]["default"] == "false", properties["fetchNews"]
    assert properties["checkForUpdates"]["default"] is False, properties["checkForUpdates"]
    expect(lab.get_by_text(re.compile("Jupyter news"))).to_have_count(0)


def test_dask_dashboard_inside_jupyterlab(lab):
    lab.locator('.lm-TabBar-tab[data-id="dask-dashboard-launcher"]').click()
    sidebar = lab.locator("#dask-dashboard-launcher")
    expect(sidebar.locator(".dask-URLInput input")).to_have_value("http://localhost:8787")
    sidebar.get_by_role("button", name="Workers", exact=True).click()
    workers = lab.frame_locator('iframe[src="http://localhost:8787/individual-workers"]')
    expect(workers.locator(".slick-row", has_text="Total (1)").first).to_be_visible(timeout=PAGE)
    expect(workers.locator(".slick-row", has_text="tcp://").first).to_be_visible()


UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}


def test_status_bar_shows_the_member_memory_limit(lab):
    result = ssh("systemctl", "show", "--property=MemoryMax", "--value",
                 f"jupyter-{MEMBER}-singleuser")  # fmt: skip
    assert result.returncode == 0, result.stderr
    limit = int(result.stdout.strip())
    indicator = lab.locator("#jp-main-statusbar").get_by_text(re.compile(r"^Mem:"))
    shape = r"Mem:\s+[\d.]+ / ([\d.]+) ([KMGT]?B)"
    expect(indicator).to_have_text(re.compile(rf"^{shape}$"), timeout=PAGE)
    match = re.fullmatch(shape, indicator.text_content().strip())
    assert match, indicator.text_content()
    shown = float(match[1]) * UNITS[match[2]]
    assert abs(shown - limit) < UNITS[match[2]] / 100, f"{match[0]} for MemoryMax={limit}"


def test_latest_model_report_opens_with_its_figures(lab):
    result = ssh("ls", "-t", f"/srv/{PROJECT}/reports")
    assert result.returncode == 0, result.stderr
    reports = [name for name in result.stdout.split() if re.match(r"monitoring-.+\.html$", name)]
    assert reports, f"no model report in /srv/{PROJECT}/reports: {result.stdout}"
    lab.goto(f"{LAB}/tree/shared-notebooks/reports/{reports[0]}")
    viewer = lab.locator(".jp-HTMLViewer:visible iframe")
    expect(viewer).to_be_visible(timeout=PAGE)
    report = lab.frame_locator(".jp-HTMLViewer:visible iframe")
    expect(report.locator("h1")).to_contain_text("Scoring model report", timeout=PAGE)
    figures = report.locator("img")
    expect(figures.first).to_be_visible()
    sizes = figures.evaluate_all("images => images.map((i) => i.complete && i.naturalWidth)")
    assert all(sizes), f"figures of {reports[0]} that did not render: {sizes}"
    lab.locator('.lm-TabBar-tab[data-id="filebrowser"]').click()
    docs_screenshot(lab, "model-report")


def luigi_tasks() -> dict[str, dict]:
    """Every task luigid knows, by id: its task list answers one status at a time."""
    tasks = {}
    for status in ("PENDING", "RUNNING", "DONE", "FAILED", "DISABLED"):
        query = urllib.parse.quote(json.dumps({"status": status}))
        url = f"http://127.0.0.1:8082/api/task_list?data={query}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            tasks.update(json.load(answer)["response"])
    return tasks


def test_luigi_visualiser_lists_the_daily_run(browser, tunnel):
    tasks = luigi_tasks()
    families = Counter(task["name"] for task in tasks.values())
    assert "DailyBackfill" in families, families
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(LUIGI)
    listed = page.locator("#familySidebar li[data-task]")
    # The visualiser lists families once luigid has answered for every status; beside a
    # busy machine's other work, the done and pending lists of a backfill took over 30 s.
    expect(listed.first).to_be_visible(timeout=LUIGI_LISTS)
    shown = dict(listed.evaluate_all(
        "items => items.map((i) => [i.dataset.task, Number(i.querySelector('.badge').textContent)])"
    ))  # fmt: skip
    assert shown == dict(families)
    done = sum(task["status"] == "DONE" for task in tasks.values())
    expect(page.locator("#DONE_info .info-box-number")).to_have_text(str(done))
    expect(page.locator("table").get_by_text("DailyBackfill", exact=True).first).to_be_visible()
    docs_screenshot(page, "luigi")
    page.close()


def test_dask_scheduler_status_page(browser, tunnel):
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(DASK_STATUS)
    expect(page).to_have_title("Dask: Status", timeout=PAGE)
    # Bokeh draws the plots and their titles on canvases; the tabs below them are text.
    expect(page.get_by_text("Data Transfer", exact=True)).to_be_visible(timeout=PAGE)
    plots = page.locator("canvas")
    expect(plots.first).to_be_visible()
    assert plots.count() >= 4, f"{plots.count()} canvases on {DASK_STATUS}"
    docs_screenshot(page, "dask-status")
    page.close()
