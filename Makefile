# One command sets up and runs each job on a fresh machine (pyenv's Python 3.10, package registries).
#   make run   - set up, then run the character pipeline on the embedded sample and push the model
#                (without --data-dir the CLI would find ../shared/data/emnist or $EMNIST_DIR first)
#   make test  - set up, then run the test suite
#   make lint  - set up, then ruff (lint and format check) and mypy on the project's packages
PYTHON ?= python3.10
UV_VERSION := 0.9.30
VENV := .venv
PY := $(VENV)/bin/python
UV := $(PYTHON) -m uv
EXPERIMENT ?= {"dataset": "EmnistDataset", "model": "CharacterModel", "network": "lenet", "train_args": {"epochs": 8}}

.PHONY: setup run test lint chromium benchmark kubeflow-spec clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) venv --quiet --seed --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

run: setup
	$(PY) -m training.run_experiment '$(EXPERIMENT)' --save --data-dir data/sample/emnist

test: setup chromium
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Debian's Chromium drives the web page test headless (Playwright's own browser download fails here).
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

benchmark: setup
	$(PY) -m benchmarks.emnist_benchmark

kubeflow-spec: setup
	$(PY) -m kubeflow.runner '$(EXPERIMENT)' --output pipeline.yaml \
		--pipeline-root gs://YOUR_BUCKET/tfx --examples-dir gs://YOUR_BUCKET/emnist-tfrecords \
		--serving-dir gs://YOUR_BUCKET/serving/characters

clean:
	rm -rf artifacts
