# Two commands a user needs: `make train` and `make test`. Both set up .venv from the pinned files first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup tools train test lint lint-delivery nbtest pytest recipe lock check-lock clean-venv

setup: $(STAMP)

$(STAMP): requirements/prod.txt requirements/dev.txt requirements/cq.txt requirements/build.txt pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	. $(BIN)/activate && for set in dev cq build; do bash requirements/install-$$set.sh --quiet; done
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

## Train the default model on the embedded digits and print where the run went.
train: setup
	$(BIN)/image_classifier_trainer $(ARGS)

## Everything CI checks: lint + clean + in sync (pre-commit), notebook tests, pytest, the image recipe.
test: lint nbtest pytest recipe

# shellcheck, git-lfs and Chromium (the report page's browser check): installed with apt-get when we are
# root on Debian or Ubuntu (CI), else named.
BROWSER := command -v chromium || command -v chromium-browser || command -v google-chrome || test -x "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"
tools:
	@command -v shellcheck >/dev/null && command -v git-lfs >/dev/null && { $(BROWSER); } >/dev/null || case "$$(uname -s)" in \
	  Darwin) echo "install shellcheck, git-lfs and Chromium: brew install shellcheck git-lfs && brew install --cask chromium"; exit 1;; \
	  MINGW*|MSYS*|CYGWIN*) echo "make test runs in WSL (see the README), where: sudo apt-get install shellcheck git-lfs chromium"; exit 1;; \
	  *) if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	       apt-get update -q && apt-get install -y -q shellcheck git-lfs chromium; \
	     else echo "install shellcheck, git-lfs and Chromium (e.g. sudo apt-get install shellcheck git-lfs chromium)"; exit 1; fi;; \
	  esac

lint: setup tools lint-delivery
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

# The Dockerfile, the shell scripts and the GitHub workflows (which cannot run here) get their linters.
lint-delivery: setup tools
	$(BIN)/hadolint --failure-threshold warning docker/Dockerfile
	shellcheck docker/*.sh requirements/*.sh .ci/run
	$(BIN)/actionlint
	$(BIN)/zizmor --offline --min-severity low .github/workflows

# No Docker engine here: run the image's install steps in a clean venv from the wheel, then train an epoch.
recipe: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" bash docker/test-recipe.sh

# The tests run on the CPU on every machine (a GPU or Apple's mps would change their figures), and offline:
# a user's `make train ARGS=--pretrained` downloads timm's weights.
nbtest pytest recipe: export IMAGE_CLASSIFIER_DEVICE ?= cpu
nbtest pytest recipe: export HF_HUB_OFFLINE ?= 1

# torch notebooks run much faster one at a time on a small machine; DataLoaders use num_workers=0.
nbtest: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/nbdev_test --n_workers 1 --timing

pytest: setup tools
	$(BIN)/pytest -q

## Re-lock requirements/*.txt from the .in files (ARGS go to uv: ARGS="--upgrade-package torch"); check-lock fails if that changes anything.
lock: setup
	. $(BIN)/activate && bash requirements/compile.sh $(ARGS)

check-lock: lock
	git diff --exit-code -- requirements/

clean-venv:
	rm -rf $(VENV)
