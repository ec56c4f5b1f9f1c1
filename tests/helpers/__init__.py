"""Helpers shared by the test modules (fixtures live in tests/conftest.py, never here).

pyproject's ``[tool.pytest.ini_options] pythonpath = ["tests"]`` puts tests/ on sys.path, in every
pytest-xdist worker too, so a test module imports them as ``from helpers.waiting import wait_until``.

- ``waiting``: ``wait_until``, the one way a test polls for something to happen.
- ``stack``: child processes (API, workers, ``archscore up``), their environment, /proc look-ups.
- ``http``: the error shape of the API, status probes, waiting for an address to answer.
- ``scoring``: score requests on NAS-Bench-201 cells, what the service stored, JSON comparison.
- ``scripts``: the files of scripts/ imported as modules.
- ``graphs``: path features of a labelled DAG by networkx's path enumeration.
- ``data``: published scores of the built-in spaces, study contexts over them.
- ``cli``: the command line invoked in-process.
- ``netns``: hosts as network namespaces (root only), with links that can be cut and restored.
"""
