"""An estimator of one's own (docs/guides/own-estimator.md): the example package examples/my_estimator, installed
by `make install`, found through its entry point and used through the whole stack -- the command line, the API
over a socket (which never loads torch), a real Celery worker on a real Redis, the rankings, the dashboard's
points and a study -- with the value of calling its function directly; a new version never reads the old
scores; and the clear errors of a plugin archscore cannot take."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from helpers.cli import run
from helpers.http import wait_answering
from helpers.scoring import cells, phash, request
from helpers.stack import child, child_env

from archscore.contract import store
from archscore.estimators.catalog import BUILT_IN, ESTIMATORS, ZERO_SHOT, EstimatorInfo
from archscore.estimators.plugins import PluginError, discover
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.service import runner

PLUGIN = "my_plain"
NB201 = get_space("nb201")
SEED = 7301  # protocol seeds of this module: a cold cache


def direct(arch, protocol: Protocol) -> float:
    """The plugin's function called directly on the network a scoring process builds for ``arch`` (parsed)
    under ``protocol``, on the protocol's first batch."""
    import torch
    from my_estimator.plain import my_plain

    from archscore.estimators.zero_shot.engine import protocol_batches
    from archscore.estimators.zero_shot.proxies import ProxyInput

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(protocol.seed)
        net = NB201.build_network(arch, num_classes=protocol.num_classes)
    x, y = protocol_batches(protocol)[0]
    net.train(protocol.bn_mode == "train")
    return my_plain(ProxyInput(net, x, y, None))


# --- the package and its function --------------------------------------------------------------------------------


def test_the_catalog_lists_the_installed_plugin_after_the_built_in_estimators():
    info = ESTIMATORS[PLUGIN]
    assert (info.kind, info.direction, info.needs_data, info.version) == ("zero_shot", "higher", True, "1")
    assert info.module == "my_estimator.plain" and PLUGIN in ZERO_SHOT and PLUGIN not in BUILT_IN
    assert list(ESTIMATORS)[: len(BUILT_IN)] == list(BUILT_IN)
    assert all(e.module is None for e in BUILT_IN.values())


def test_the_function_computes_plain_as_defined():
    """Σ w ⊙ ∂L/∂w, against the weight gradients of archscore's shared pass on the same network and batch."""
    import torch

    from archscore.estimators.zero_shot.shared_pass import run_shared_pass

    protocol = Protocol(batch_size=16)
    arch = NB201.sample(1, seed=3)[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(protocol.seed)
        net = NB201.build_network(arch)
    from archscore.estimators.zero_shot.engine import protocol_batches

    x, y = protocol_batches(protocol)[0]
    net.train()
    shared = run_shared_pass(net, x, y, {"weight_grads"})
    expected = sum((w.detach() * g).sum().item() for w, g in zip(shared.weights, shared.weight_grads))
    assert direct(arch, protocol) == pytest.approx(expected, rel=1e-6)


def test_a_version_bump_changes_the_cache_key(monkeypatch):
    key = store.score_key("nb201", phash(SEED), PLUGIN)
    assert key.endswith(f":{PLUGIN}@1")
    monkeypatch.setitem(ESTIMATORS, PLUGIN, dataclasses.replace(ESTIMATORS[PLUGIN], version="2"))
    assert store.score_key("nb201", phash(SEED), PLUGIN) == key.removesuffix("@1") + "@2"


# --- the command line ----------------------------------------------------------------------------------------------


def test_the_command_line_lists_it_and_scores_with_it():
    listed = {e["name"]: e for e in json.loads(run("estimators", "--json").stdout)}
    assert listed[PLUGIN] == ESTIMATORS[PLUGIN].to_dict()
    assert f"plugin {ESTIMATORS[PLUGIN].module}" in " ".join(run("estimators").stdout.split())
    result = run("score", "--sample", "2", "--seed", "0", "-e", f"{PLUGIN},params", "--batch-size", "16")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 2
    for record in records:  # the library scores each architecture as given
        value = record["scores"][PLUGIN]
        assert value == pytest.approx(direct(NB201.parse(record["arch"]), Protocol(batch_size=16)), rel=1e-6)


def test_a_plugin_whose_module_is_broken_is_a_usage_error(monkeypatch):
    ghost = EstimatorInfo(
        "ghost", "zero_shot", "higher", False, "1", "", "a plugin whose module is gone", "no_such_mod"
    )
    monkeypatch.setitem(ZERO_SHOT, "ghost", ghost)
    monkeypatch.setitem(ESTIMATORS, "ghost", ghost)
    result = run("score", "--sample", "1", "-e", "ghost")
    assert result.exit_code == 2
    assert "estimator 'ghost': its module no_such_mod cannot be imported" in result.stderr


# --- the stack: the API over a socket, a Celery worker, Redis --------------------------------------------------------


@pytest.fixture(scope="module")
def api(test_redis, celery_worker, tmp_path_factory):
    """The API in a process of its own over a socket, on the tests' Redis, whose chunks the in-thread worker
    scores: (base URL, the API's pid)."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    port = runner.free_port()
    with child(runner.api_command("127.0.0.1", port), child_env(test_redis.url), log) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_answering(f"{base}/healthz", 60, procs={"API": proc}, logs={"API": log})
        yield base, proc.pid


def test_the_api_a_worker_the_rankings_the_dashboard_and_a_study_use_it(api, r):
    base, pid = api
    archs = cells(4, seed=73)
    protocol = Protocol(batch_size=16, num_batches=1, seed=SEED)
    with httpx.Client(base_url=base, timeout=180) as http:
        listed = {e["name"]: e for e in http.get("/v1/estimators").json()}
        assert listed[PLUGIN] == ESTIMATORS[PLUGIN].to_dict() and listed["snip"]["module"] is None

        job = http.post("/v1/scores", params={"wait": 120}, json=request(archs, [PLUGIN, "params"], SEED)).json()
        assert job["status"] == "done", job
        for arch, result in zip(archs, job["results"]):
            assert result["error"] is None, result
            scored = NB201.representative(NB201.parse(arch))  # a worker scores the class's representative
            assert result["scores"][PLUGIN] == pytest.approx(direct(scored, protocol), rel=1e-6)
        assert r.hlen(store.score_key("nb201", protocol.hash(), PLUGIN)) == len(archs)

        rankings = http.get("/v1/rankings/nb201", params={"protocol_hash": protocol.hash()}).json()["rankings"]
        assert -1 <= rankings[0]["estimators"][PLUGIN]["kendall_tau"] <= 1
        points = http.get(
            "/v1/rankings/nb201/points",
            params={"protocol_hash": protocol.hash(), "truth": "cifar10_test", "estimator": PLUGIN},
        ).json()["points"]
        assert sorted(p[2] for p in points) == sorted(archs)

        study = {
            "study": "complexity_bias",
            "space": "nb201",
            "archs": archs,
            "estimators": [PLUGIN],
            "protocol": {"batch_size": 16, "num_batches": 1, "seed": SEED},
            "truth": "cifar10_test",
            "options": {"bins": 2},
        }
        created = http.post("/v1/studies", json=study)
        assert created.status_code == 202, created.text
        done = http.get(f"/v1/studies/{created.json()['study_id']}", params={"wait": 120}).json()
        assert done["status"] == "done", done
        assert set(done["result"]["result"]["global"]) == {PLUGIN}

    mapped = Path(f"/proc/{pid}/maps").read_text()
    assert "libtorch" not in mapped and "/torch/" not in mapped, "the API process loaded torch"


def test_a_new_version_of_it_never_reads_the_old_scores(client, r, monkeypatch):
    archs = cells(2, seed=74)
    body = request(archs, [PLUGIN], SEED + 1)
    first = client.post("/v1/scores", params={"wait": 120}, json=body).json()
    assert first["status"] == "done" and first["cached"] == 0
    assert client.post("/v1/scores", params={"wait": 120}, json=body).json()["cached"] == 2
    old = store.score_key("nb201", phash(SEED + 1), PLUGIN)

    monkeypatch.setitem(ESTIMATORS, PLUGIN, dataclasses.replace(ESTIMATORS[PLUGIN], version="2"))
    bumped = client.post("/v1/scores", params={"wait": 120}, json=body).json()
    assert bumped["status"] == "done" and bumped["cached"] == 0  # scored again, under its new key
    new = store.score_key("nb201", phash(SEED + 1), PLUGIN)
    assert new != old and r.hlen(new) == r.hlen(old) == 2
    assert [x["scores"] for x in bumped["results"]] == [x["scores"] for x in first["results"]]  # same function


def test_a_worker_scores_only_the_plugins_its_setting_names(client, settings_env):
    body = request(cells(1, seed=75), [PLUGIN, "snip"], SEED + 2)
    settings_env(estimator_modules='["someone_else.estimators"]')
    [refused] = client.post("/v1/scores", params={"wait": 120}, json=body).json()["results"]
    assert refused["scores"][PLUGIN] is None
    assert "does not load its module my_estimator.plain (ARCHSCORE_ESTIMATOR_MODULES" in refused["error"]
    settings_env(estimator_modules='["my_estimator.plain"]')
    [scored] = client.post("/v1/scores", params={"wait": 120}, json=body).json()["results"]
    assert scored["error"] is None and isinstance(scored["scores"][PLUGIN], float)


# --- plugins archscore cannot take ------------------------------------------------------------------------------------


def _package(root: Path, dist: str, entries: dict[str, str], modules: dict[str, str]) -> Path:
    """An installed distribution in the folder ``root`` (for sys.path): its entry points in the group, its modules."""
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    points = "".join(f"{name} = {value}\n" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[archscore.estimators]\n{points}")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(source)
    return root


FACTS = {"module": "m", "needs_data": False, "version": "1", "unit": "", "description": "d"}


@pytest.mark.parametrize(
    ("name", "declared", "message"),
    [
        ("snip", FACTS, "'snip' is the name of a built-in estimator"),
        ("all", FACTS, "'all' means every zero-shot estimator"),
        ("Bad-Name", FACTS, "an estimator name is a lower-case letter"),
        ("ok", [1, 2], "names a list, not a dict of the estimator's facts"),
        ("ok", {k: v for k, v in FACTS.items() if k != "version"}, "missing version"),
        ("ok", {**FACTS, "direction": "lower"}, "unknown direction"),
        ("ok", {**FACTS, "needs_data": "no"}, "needs_data must be a bool"),
        ("ok", {**FACTS, "version": "1 beta"}, "version must be 1 to 32 letters"),
        ("ok", {**FACTS, "module": "not a module"}, "module must be a dotted module name"),
    ],
)
def test_a_plugin_archscore_cannot_take_is_refused_naming_its_entry_point(
    tmp_path, monkeypatch, name, declared, message
):
    monkeypatch.syspath_prepend(
        str(_package(tmp_path, "bad-plugin", {name: "bad_facts:FACTS"}, {"bad_facts": f"FACTS = {declared!r}\n"}))
    )
    monkeypatch.delitem(sys.modules, "bad_facts", raising=False)  # another case's facts
    with pytest.raises(PluginError) as refused:
        discover(BUILT_IN)
    assert message in str(refused.value)
    assert f"entry point {name} = 'bad_facts:FACTS' of bad-plugin 0.1 (group archscore.estimators)" in str(
        refused.value
    )


def test_two_packages_may_not_declare_one_name(tmp_path, monkeypatch):
    for dist in ("first-plugin", "second-plugin"):
        root = _package(
            tmp_path / dist,
            dist,
            {"twin": f"{dist.replace('-', '_')}:FACTS"},
            {dist.replace("-", "_"): f"FACTS = {FACTS!r}\n"},
        )
        monkeypatch.syspath_prepend(str(root))
    with pytest.raises(PluginError, match="estimator 'twin' is also declared by entry point twin"):
        discover(BUILT_IN)


def test_a_good_plugin_is_discovered_beside_the_example(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(
        str(_package(tmp_path, "good-plugin", {"good": "good_facts:FACTS"}, {"good_facts": f"FACTS = {FACTS!r}\n"}))
    )
    found = {f.name: f for f in discover(BUILT_IN)}
    assert set(found) >= {"good", PLUGIN} and found["good"].module == "m" and not found["good"].needs_data


@pytest.mark.parametrize(
    ("facts_source", "message"),
    [
        (f"FACTS = {FACTS!r}\n", "'snip' is the name of a built-in estimator; choose another name"),
        # torch is a stub here: what is checked is that reading the facts imported a module named torch
        (f"import torch\nFACTS = {FACTS!r}\n", "loading the facts imported torch"),
    ],
)
def test_a_process_with_such_a_plugin_stops_at_start_saying_why(tmp_path, facts_source, message):
    name = "snip" if "snip" in message else "heavy"
    root = _package(tmp_path, "bad-plugin", {name: "bad_facts:FACTS"}, {"bad_facts": facts_source, "torch": ""})
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", "import archscore.estimators.catalog"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and message in done.stderr.splitlines()[-1], done.stderr


@pytest.fixture
def proxies():
    """The registry of functions, restored after the test."""
    from archscore.estimators.zero_shot.proxies import PROXIES

    before = dict(PROXIES)
    yield PROXIES
    PROXIES.clear()
    PROXIES.update(before)


def test_the_loader_says_when_a_plugin_module_does_not_register_its_estimator(tmp_path, monkeypatch, proxies):
    from archscore.estimators.zero_shot.plugin_loader import load_plugins

    register = "from archscore.estimators.zero_shot.proxies import register_proxy\n"
    sources = {
        "silent_mod": "",  # registers nothing
        "thief_mod": register + "@register_proxy('silent')\ndef f(inp):\n    return 0.0\n",  # another's estimator
        "own_mod": register + "@register_proxy('own')\ndef f(inp):\n    return 1.0\n",
    }
    for module, source in sources.items():
        (tmp_path / f"{module}.py").write_text(source)
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, module in (("silent", "silent_mod"), ("stolen", "thief_mod"), ("own", "own_mod")):
        monkeypatch.setitem(ZERO_SHOT, name, EstimatorInfo(name, "zero_shot", "higher", False, "1", "", "-", module))

    with pytest.raises(PluginError, match=r"estimator 'silent': its module silent_mod registers no function"):
        load_plugins(["silent"])
    with pytest.raises(
        PluginError, match=r"thief_mod cannot be imported: ValueError: estimator 'silent' is registered by"
    ):
        load_plugins(["stolen"])
    load_plugins(["own"])
    assert proxies["own"].compute(None) == 1.0
    for module in sources:
        sys.modules.pop(module, None)
