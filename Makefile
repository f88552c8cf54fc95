# The two front-door commands: `make run` and `make test`. Each sets up what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: run test install browser postgres clean lint-docker mutation

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

# Debian's PostgreSQL server programs for the `postgres` tests (the tests start their own server in a
# temporary folder; nothing is started or enabled here).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  echo "installing Debian postgresql for the database tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	  || echo "WARNING: could not install postgresql; the postgres tests will fail"; }

run: install
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.headless true

# Missing ../shared/data (or chromium) fails the tests that need it; `make test ALLOW_MISSING_DATA=1`
# skips them instead, named in the summary, for a quick local run (ignored under CI=true).
test: install browser postgres
	ALLOW_MISSING_DATA=$(ALLOW_MISSING_DATA) $(BIN)/python -m pytest -q

# Mutation testing of the core modules (not part of `make test`; CPU-heavy: on 2 shared cores
# metrics, calibration, NEWS2, registry and review store took ~45 min, the imaging modules more):
# mutmut 3 as configured in pyproject.toml, one module at a time (MUTATION_MODULES=... to pick),
# then killed / total per module. OMP_NUM_THREADS=1: torch's OpenMP pool does not survive fork.
MUTATION_MODULES ?= metrics.classification metrics.calibration imaging.finish vitals.news2 vitals.alerts \
	vitals.trees registry review_store imaging.transforms imaging.io imaging.formats imaging.ood \
	imaging.operating imaging.overlap metrics.subgroups vitals.reader vitals.grid vitals.ward vitals.evaluate \
	imaging.site imaging.splits vitals.stay_review vitals.summary vitals.ensemble vitals.uploads vitals.predict \
	vitals.fhir
mutation: install
	$(BIN)/pip install -q -r requirements-dev.txt
	for m in $(MUTATION_MODULES); do \
	  OMP_NUM_THREADS=1 CXR_DATA_DIR=$(abspath $(or $(CXR_DATA_DIR),../shared/data)) CXR_MODELS_DIR=$(abspath assets/models) \
	  nice -n 10 $(BIN)/mutmut run --max-children $(or $(JOBS),1) "cxr_model.$$m.*" || exit 1; done
	@echo "module  killed / total  (survived, no tests, timeout)"
	@$(BIN)/mutmut results --all true | awk -F': ' '{m=$$1; sub(/^ +/, "", m); sub(/\.x(_|ǁ).*/, "", m); \
	  t[m]++; s[m, $$2]++} END {for (m in t) printf "%-36s %4d / %4d  (%d, %d, %d)\n", m, s[m, "killed"], t[m], \
	  s[m, "survived"], s[m, "no tests"], s[m, "timeout"]}' | sort

lint-docker:
	hadolint Dockerfile

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts mutants
