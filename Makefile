# The two front-door commands: `make run` and `make test`. Each sets up what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: run test install browser clean lint-docker

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the real-browser tests (Playwright's own browser download is blocked).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "WARNING: could not install chromium; browser tests will fail under CI"; }

run: install
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.headless true

test: install browser
	$(BIN)/python -m pytest -q

lint-docker:
	hadolint Dockerfile

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
