"""The dashboard in a real headless Chromium (Debian's chromium and chromedriver, driven by selenium),
served by a real API process over a socket, on scores and a study computed by a real worker."""

from __future__ import annotations

import os
import shutil
import time

import httpx
import pytest

from conftest import child, child_env
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.service import runner

pytestmark = pytest.mark.usefixtures("celery_worker")
NB201 = get_space("nb201")
ESTIMATORS = ["params", "synflow", "relu"]


def _browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver must be installed (apt-get install chromium chromium-driver)")
        pytest.skip("chromium / chromedriver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1700"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def _wait(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_dashboard_shows_the_table_a_scatter_the_studies_and_the_jobs(client, test_redis, tmp_path):
    archs = [NB201.to_string(a) for a in NB201.sample(12, seed=61)]
    protocol = {"batch_size": 4, "seed": 601}
    job = client.post("/v1/scores?wait=120", json={"space": "nb201", "archs": archs, "estimators": ESTIMATORS,
                                                   "protocol": protocol, "truth": "cifar10_test"}).json()
    assert job["status"] == "done"
    study = client.post("/v1/studies", json={"study": "complexity_bias", "space": "nb201", "archs": archs,
                                             "estimators": ESTIMATORS, "protocol": protocol,
                                             "truth": "cifar10_test", "options": {"bins": 2}}).json()
    _wait(lambda: client.get(f"/v1/studies/{study['study_id']}?wait=20").json()["status"] == "done", 180,
          "the study")
    phash = Protocol(**protocol).hash()

    port = runner.free_port()
    with child(runner.api_command("127.0.0.1", port), child_env(test_redis.url), tmp_path / "api.log"):
        url = f"http://127.0.0.1:{port}"
        _wait(lambda: _answers(f"{url}/healthz"), what="the API")
        browser = _browser()
        try:
            browser.get(f"{url}/dashboard?space=nb201&truth=cifar10_test")
            _wait(lambda: browser.execute_script("return document.body.dataset.ready === '1'"), what="the page")
            browser.execute_script("const s = document.getElementById('protocol'); s.value = arguments[0];"
                                   "s.dispatchEvent(new Event('change'));", phash)
            rows = _wait(lambda: browser.execute_script(
                "return [...document.querySelectorAll('#criteria tbody tr')].map(r => r.dataset.estimator)"),
                what="the criteria table")
            assert set(ESTIMATORS) <= set(rows)
            browser.execute_script("const s = document.getElementById('estimator'); s.value = 'synflow';"
                                   "s.dispatchEvent(new Event('change'));")
            scatter = _wait(lambda: browser.execute_script(
                "const c = window.archscore.charts.scatter; return c && c.data.datasets[0].label.startsWith('synflow') "
                "&& {points: c.data.datasets[0].data.length, axis: c.scales.x.type, "
                "xticks: c.scales.x.ticks.map(t => t.label).filter(l => l !== ''), "
                "yticks: c.scales.y.ticks.map(t => t.label).filter(l => l !== ''), "
                "tooltip: c.options.plugins.tooltip.callbacks.label({raw: c.data.datasets[0].data[0]}), "
                "arch: c.data.datasets[0].data[0].arch, legend: c.options.plugins.legend.position}"),
                what="the scatter")
            assert scatter["points"] >= 12
            assert scatter["axis"] == "logarithmic"  # synflow spans decades
            assert len(scatter["xticks"]) >= 2 and len(scatter["yticks"]) >= 3
            assert scatter["tooltip"][0] == scatter["arch"] in archs and "cifar10_test" in scatter["tooltip"][2]
            assert scatter["legend"] == "right"
            for chart in ("ptop", "br", "wr"):
                series = browser.execute_script(
                    f"return window.archscore.charts.{chart}.data.datasets.map(d => [d.label, JSON.stringify(d.borderDash), d.pointStyle])")
                assert {label for label, _, _ in series} >= set(ESTIMATORS)
                assert len({(dash, marker) for _, dash, marker in series}) == len(series)  # not by colour alone
            csv = browser.execute_script("return window.archscore.csv()").splitlines()
            assert csv[0].startswith("estimator,n,Kendall tau") and {line.split(",")[0] for line in csv[1:]} >= set(ESTIMATORS)
            figures = _wait(lambda: browser.execute_script(
                "return [...document.querySelectorAll('#studies img')].filter(i => i.complete && i.naturalWidth > 0)"
                ".length"), what="the study figures")
            assert figures >= 2
            assert browser.execute_script("return document.querySelectorAll('#jobs tbody tr').length") >= 1
            # the scatter as drawn: its tick labels and axis title below the plot area are ink, not blank
            canvas = browser.find_element("id", "scatter")
            below = browser.execute_script("const c = window.archscore.charts.scatter;"
                                           "return [c.chartArea.bottom, c.height, c.width]")
            from io import BytesIO

            from PIL import Image

            image = Image.open(BytesIO(canvas.screenshot_as_png)).convert("L")
            scale = image.width / below[2]
            strip = image.crop((0, int(below[0] * scale) + 2, image.width, image.height))
            ink = sum(1 for v in strip.getdata() if v < 128)
            assert ink > 150, ink
            shot = tmp_path / "dashboard.png"
            browser.save_screenshot(str(shot))
            assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
            if os.environ.get("ARCHSCORE_SCREENSHOT"):  # keep one for the docs
                shutil.copy(shot, os.environ["ARCHSCORE_SCREENSHOT"])
            errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
            assert not errors, errors

            # without ?space=, the page opens on the space with the most scored architectures
            most = max(((max([r["n"] for r in client.get(f"/v1/rankings/{sp['name']}", params={
                "truth": sp["ground_truth_columns"][0], "limit": 100}).json()["rankings"]] or [0]), sp["name"])
                for sp in client.get("/v1/spaces").json() if sp["ground_truth_columns"]))
            browser.get(f"{url}/dashboard")
            _wait(lambda: browser.execute_script("return document.body.dataset.ready === '1'"), what="the page")
            assert browser.execute_script("return document.getElementById('space').value") == most[1]
            browser.get(f"{url}/dashboard?space=bogus")
            _wait(lambda: browser.execute_script("return document.body.dataset.ready === '1'"), what="the page")
            assert "no space bogus" in browser.execute_script("return document.getElementById('status').textContent")
            assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        finally:
            browser.quit()
        page = httpx.get(f"{url}/dashboard", timeout=5)
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
        assert httpx.get(f"{url}/dashboard/vendor/chart.umd.min.js", timeout=5).status_code == 200
        assert httpx.get(f"{url}/dashboard/vendor/..%2Fdashboard.js", timeout=5).status_code == 404


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_points_endpoint_gives_score_and_truth_of_each_scored_architecture(client):
    archs = [NB201.to_string(a) for a in NB201.sample(6, seed=62)]
    protocol = {"batch_size": 4, "seed": 602}
    job = client.post("/v1/scores?wait=120", json={"space": "nb201", "archs": archs, "estimators": ["synflow"],
                                                   "protocol": protocol, "truth": "cifar10_test"}).json()
    phash = Protocol(**protocol).hash()
    for estimator in ("synflow", "params"):
        data = client.get("/v1/rankings/nb201/points", params={"protocol_hash": phash, "truth": "cifar10_test",
                                                               "estimator": estimator}).json()
        points = {arch: (score, truth) for score, truth, arch in data["points"]}
        assert set(points) == set(archs)
        for result in job["results"]:
            if estimator == "synflow":
                assert points[result["arch"]] == (result["scores"]["synflow"], result["ground_truth"])
            else:
                assert points[result["arch"]][0] == pytest.approx(NB201.cost(NB201.parse(result["arch"]))[0] / 1e6)
    bad = client.get("/v1/rankings/nb201/points", params={"protocol_hash": phash, "truth": "x", "estimator": "nope"})
    assert bad.status_code == 422
