"""The dashboard in a real headless Chromium (Debian's chromium and chromedriver, driven by selenium),
served by a real API process over a socket, on scores and a study computed by a real worker."""

from __future__ import annotations

import csv
import io
import os
import shutil

import httpx
import pytest
from helpers.http import status_of
from helpers.stack import child, child_env
from helpers.waiting import wait_until
from typer.testing import CliRunner

from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.service import runner
from archscore.service.cli import app

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
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1700",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.mark.slow
def test_dashboard_shows_the_table_a_scatter_the_studies_and_the_jobs(client, test_redis, tmp_path, monkeypatch):
    archs = [NB201.to_string(a) for a in NB201.sample(12, seed=61)]
    protocol = {"batch_size": 4, "seed": 601}
    job = client.post(
        "/v1/scores?wait=120",
        json={
            "space": "nb201",
            "archs": archs,
            "estimators": ESTIMATORS,
            "protocol": protocol,
            "truth": "cifar10_test",
        },
    ).json()
    assert job["status"] == "done"
    study = client.post(
        "/v1/studies",
        json={
            "study": "complexity_bias",
            "space": "nb201",
            "archs": archs,
            "estimators": ESTIMATORS,
            "protocol": protocol,
            "truth": "cifar10_test",
            "options": {"bins": 2},
        },
    ).json()
    wait_until(
        lambda: client.get(f"/v1/studies/{study['study_id']}?wait=20").json()["status"] == "done",
        180,
        interval=0,
        message="the study",
    )
    phash = Protocol(**protocol).hash()
    # a study run from the CLI, kept in the data folder the API reads
    monkeypatch.setenv("ARCHSCORE_DATA_DIR", str(tmp_path / "data"))
    ran = CliRunner().invoke(
        app,
        [
            "study",
            "complexity_bias",
            "--space",
            "nb201",
            "--sample",
            "12",
            "--seed",
            "5",
            "-e",
            "params,flops",
            "--bins",
            "2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "cli"),
        ],
    )
    assert ran.exit_code == 0, ran.output

    port = runner.free_port()
    with child(
        runner.api_command("127.0.0.1", port),
        child_env(test_redis.url, data_dir=str(tmp_path / "data")),
        tmp_path / "api.log",
    ):
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: status_of(f"{url}/healthz", timeout=1) == 200, 30, message="the API")
        browser = _browser()
        try:
            browser.get(f"{url}/dashboard?space=nb201&truth=cifar10_test")
            wait_until(
                lambda: browser.execute_script("return document.body.dataset.ready === '1'"), 30, message="the page"
            )
            browser.execute_script(
                "const s = document.getElementById('protocol'); s.value = arguments[0];"
                "s.dispatchEvent(new Event('change'));",
                phash,
            )
            rows = wait_until(
                lambda: browser.execute_script(
                    "return [...document.querySelectorAll('#criteria tbody tr')].map(r => r.dataset.estimator)"
                ),
                30,
                message="the criteria table",
            )
            assert set(ESTIMATORS) <= set(rows)
            rows_shown = rows
            browser.execute_script(
                "const s = document.getElementById('estimator'); s.value = 'synflow';"
                "s.dispatchEvent(new Event('change'));"
            )
            scatter = wait_until(
                lambda: browser.execute_script(
                    "const c = window.archscore.charts.scatter; return c && c.data.datasets[0].label.startsWith('synflow') "
                    "&& {points: c.data.datasets[0].data.length, axis: c.scales.x.type, "
                    "xticks: c.scales.x.ticks.map(t => t.label).filter(l => l !== ''), "
                    "yticks: c.scales.y.ticks.map(t => t.label).filter(l => l !== ''), "
                    "tooltip: c.options.plugins.tooltip.callbacks.label({raw: c.data.datasets[0].data[0]}), "
                    "arch: c.data.datasets[0].data[0].arch, legend: c.options.plugins.legend.position}"
                ),
                30,
                message="the scatter",
            )
            assert scatter["points"] >= 12
            assert scatter["axis"] == "logarithmic"  # synflow spans decades
            assert len(scatter["xticks"]) >= 2 and len(scatter["yticks"]) >= 3
            assert scatter["tooltip"][0] == scatter["arch"] in archs and "cifar10_test" in scatter["tooltip"][2]
            assert scatter["legend"] == "right"
            # the mouse on a point: the tooltip as Chart.js shows it names the architecture and both values
            canvas = browser.find_element("id", "scatter")
            point = browser.execute_script(
                "const c = window.archscore.charts.scatter, p = c.getDatasetMeta(0).data[0], r = c.canvas.getBoundingClientRect();"
                "return [p.x - r.width / 2, p.y - r.height / 2, c.data.datasets[0].data[0].arch]"
            )
            from selenium.webdriver.common.action_chains import ActionChains

            ActionChains(browser).move_to_element_with_offset(canvas, int(point[0]), int(point[1])).perform()
            shown = wait_until(
                lambda: browser.execute_script(
                    "const t = window.archscore.charts.scatter.tooltip;"
                    "return t.opacity > 0 && t.body && t.body.flatMap(b => b.lines)"
                ),
                30,
                message="the tooltip",
            )
            assert point[2] in shown and any(line.startswith("synflow ") for line in shown), shown
            assert any(line.startswith("cifar10_test ") for line in shown), shown
            ActionChains(browser).move_to_element(browser.find_element("tag name", "h1")).perform()  # off the chart
            for chart in ("ptop", "br", "wr"):
                series = browser.execute_script(
                    f"return window.archscore.charts.{chart}.data.datasets.map(d => [d.label, JSON.stringify(d.borderDash), d.pointStyle])"
                )
                assert {label for label, _, _ in series} >= set(ESTIMATORS)
                assert len({(dash, marker) for _, dash, marker in series}) == len(series)  # not by colour alone
            # the export button's file: the table's rows, header first
            exported = browser.execute_async_script(
                "const done = arguments[arguments.length - 1], made = URL.createObjectURL;"
                "URL.createObjectURL = (blob) => { blob.text().then(done); URL.createObjectURL = made; return made(blob); };"
                "HTMLAnchorElement.prototype.click = function () {};"  # no download dialog
                "document.getElementById('export').click();"
            )
            table = browser.execute_script(
                "return [...document.querySelectorAll('#criteria tr')].map(r => [...r.children].map(c => c.textContent))"
            )
            rows = list(csv.reader(io.StringIO(exported)))
            assert rows == table and len(rows) == 1 + len(rows_shown)
            assert rows[0][:3] == ["estimator", "n", "Kendall tau"] and {r[0] for r in rows[1:]} >= set(ESTIMATORS)
            assert rows[0][-1] == "nDCG" and all(r[-1] not in ("", "–") for r in rows[1:]), rows
            loaded = (
                "return [...document.querySelectorAll(arguments[0])].filter(i => i.complete && i.naturalWidth > 0)"
                ".length"
            )
            wait_until(
                lambda: browser.execute_script(loaded, "#studies .study.service img") >= 2,
                30,
                message="the study figures",
            )
            # the study run from the CLI, beside the service's
            wait_until(
                lambda: browser.execute_script(loaded, "#studies .study.cli img") == 2,
                30,
                message="the CLI study's figures",
            )
            cli = browser.execute_script("return document.querySelector('#studies .study.cli').textContent")
            assert "complexity_bias on nb201 (cifar10_test, 12 architectures): archscore study" in cli
            assert browser.execute_script("return document.querySelectorAll('#jobs tbody tr').length") >= 1
            # the scatter as drawn: its tick labels are ink on the screenshot. Ink beside the plot area is
            # counted as the page draws it, then with one axis's tick labels hidden: the difference is
            # the labels' own ink (the axis title and the legend count the same both times)
            canvas = browser.find_element("id", "scatter")
            drawn = _axis_ink(browser, canvas)
            for axis in ("x", "y"):
                hidden = _axis_ink(browser, canvas, hide=axis)
                assert drawn[axis] - hidden[axis] > 100, (axis, drawn, hidden)
            # the rank toggle: ranks 1..n on the score axis
            browser.execute_script(
                "const s = document.getElementById('axis'); s.value = 'rank';s.dispatchEvent(new Event('change'));"
            )
            ranked = wait_until(
                lambda: browser.execute_script(
                    "const c = window.archscore.charts.scatter; const xs = c.data.datasets[0].data.map(p => p.x);"
                    "return c.options.scales.x.title.text.startsWith('rank') && [Math.min(...xs), Math.max(...xs), xs.length,"
                    "c.scales.x.type]"
                ),
                30,
                message="the rank axis",
            )
            assert ranked[:3] == [1, scatter["points"], scatter["points"]] and ranked[3] == "linear"
            browser.execute_script(
                "const s = document.getElementById('axis'); s.value = 'auto';s.dispatchEvent(new Event('change'));"
            )
            wait_until(
                lambda: browser.execute_script(
                    "return window.archscore.charts.scatter.scales.x.type === 'logarithmic'"
                ),
                30,
                message="the log axis again",
            )
            shot = tmp_path / "dashboard.png"
            browser.save_screenshot(str(shot))
            assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
            if os.environ.get("ARCHSCORE_SCREENSHOT"):  # keep one for the docs
                shutil.copy(shot, os.environ["ARCHSCORE_SCREENSHOT"])
            errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
            assert not errors, errors

            # without ?space=, the page opens on the space with the most scored architectures
            most = max(
                (
                    max(
                        [
                            r["n"]
                            for r in client.get(
                                f"/v1/rankings/{sp['name']}",
                                params={"truth": sp["ground_truth_columns"][0], "limit": 100},
                            ).json()["rankings"]
                        ]
                        or [0]
                    ),
                    sp["name"],
                )
                for sp in client.get("/v1/spaces").json()
                if sp["ground_truth_columns"]
            )
            browser.get(f"{url}/dashboard")
            wait_until(
                lambda: browser.execute_script("return document.body.dataset.ready === '1'"), 30, message="the page"
            )
            assert browser.execute_script("return document.getElementById('space').value") == most[1]
            browser.get(f"{url}/dashboard?space=bogus")
            wait_until(
                lambda: browser.execute_script("return document.body.dataset.ready === '1'"), 30, message="the page"
            )
            assert "no space bogus" in browser.execute_script("return document.getElementById('status').textContent")
            assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        finally:
            browser.quit()
        page = httpx.get(f"{url}/dashboard", timeout=5)
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
        assert httpx.get(f"{url}/dashboard/vendor/chart.umd.min.js", timeout=5).status_code == 200
        assert httpx.get(f"{url}/dashboard/vendor/..%2Fdashboard.js", timeout=5).status_code == 404


def _axis_ink(browser, canvas, hide: str | None = None) -> dict[str, int]:
    """Dark pixels of the scatter's screenshot below its plot area (x) and left of it (y), as drawn, or
    with one axis's tick labels hidden (then drawn again as the page had it)."""
    from PIL import Image

    script = (
        "const c = window.archscore.charts.scatter, axis = arguments[0];"
        "if (axis) { c.options.scales[axis].ticks.display = false; c.update('none'); }"
        "return [c.chartArea.left, c.chartArea.bottom, c.width];"
    )
    left, bottom, width = browser.execute_script(script, hide)
    image = Image.open(io.BytesIO(canvas.screenshot_as_png)).convert("L")
    if hide:
        browser.execute_script(
            "const c = window.archscore.charts.scatter;"
            "c.options.scales[arguments[0]].ticks.display = true; c.update('none');",
            hide,
        )
    scale = image.width / width

    def ink(box) -> int:
        return sum(1 for v in image.crop(box).getdata() if v < 160)

    return {
        "x": ink((0, int(bottom * scale) + 2, image.width, image.height)),
        "y": ink((0, 0, max(1, int(left * scale) - 2), int(bottom * scale))),
    }


def test_points_endpoint_gives_score_and_truth_of_each_scored_architecture(client):
    archs = [NB201.to_string(a) for a in NB201.sample(6, seed=62)]
    protocol = {"batch_size": 4, "seed": 602}
    job = client.post(
        "/v1/scores?wait=120",
        json={
            "space": "nb201",
            "archs": archs,
            "estimators": ["synflow"],
            "protocol": protocol,
            "truth": "cifar10_test",
        },
    ).json()
    phash = Protocol(**protocol).hash()
    for estimator in ("synflow", "params"):
        data = client.get(
            "/v1/rankings/nb201/points",
            params={"protocol_hash": phash, "truth": "cifar10_test", "estimator": estimator},
        ).json()
        points = {arch: (score, truth) for score, truth, arch in data["points"]}
        assert set(points) == set(archs)
        for result in job["results"]:
            if estimator == "synflow":
                assert points[result["arch"]] == (result["scores"]["synflow"], result["ground_truth"])
            else:
                assert points[result["arch"]][0] == pytest.approx(NB201.cost(NB201.parse(result["arch"]))[0] / 1e6)
    bad = client.get("/v1/rankings/nb201/points", params={"protocol_hash": phash, "truth": "x", "estimator": "nope"})
    assert bad.status_code == 422
