# archscore — the two quickstart commands are `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Until the service exists: score a sample of NB201 cells and print the ranking-quality table.
run: install
	$(BIN)/archscore demo --sample 40 --seed 0

test: install
	$(BIN)/python -m pytest -q -n 2

bench: install
	$(BIN)/python benchmarks/zero_shot.py

clean:
	rm -rf $(VENV) build *.egg-info
