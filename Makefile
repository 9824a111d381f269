# Two commands a user needs: `make train` and `make test`. Both set up .venv from the pinned files first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1

.PHONY: setup train test lint nbtest pytest lock check-lock clean-venv

setup: $(STAMP)

$(STAMP): requirements/prod.txt requirements/dev.txt requirements/cq.txt requirements/build.txt pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	. $(BIN)/activate && for set in dev cq build; do bash requirements/install-$$set.sh --quiet; done
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

## Train the default model on the embedded digits and print where the run went.
train: setup
	$(BIN)/image_classifier_trainer $(ARGS)

## Everything CI checks: lint + clean + in sync (pre-commit), notebook tests, pytest.
test: lint nbtest pytest

lint: setup
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

# torch notebooks run much faster one at a time on a small machine; DataLoaders use num_workers=0.
nbtest: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/nbdev_test --n_workers 1 --timing

pytest: setup
	$(BIN)/pytest -q

## Re-lock requirements/*.txt from the .in files; check-lock fails if that changes anything.
lock: setup
	. $(BIN)/activate && bash requirements/compile.sh

check-lock: lock
	git diff --exit-code -- requirements/

clean-venv:
	rm -rf $(VENV)
