# The two commands a new user needs (see README):
#   make train   set up .venv if missing, then train LEWM and the emotion-blind model side by side
#   make test    set up .venv if missing, then run the test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
ENV_ID ?= SocialNegotiation-v1

.PHONY: setup train test lint baselines clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

train: setup
	$(PY) -m lewm_rl.train --env $(ENV_ID) --compare

test: setup
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check .

baselines: setup
	$(PY) -m benchmarks.baselines --env $(ENV_ID) --episodes 1000 --seed 0

clean:
	rm -rf $(VENV) build dist *.egg-info
