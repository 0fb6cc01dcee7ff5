# TradePulse — everything a fresh clone needs is behind these targets.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: install install-dev run test test-fast bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel

# A stamp per requirements file: reinstall only when the file changed. Both stamps end by
# compiling the numba functions into their disk cache (about 25 s of CPU), so the first
# backtest after an install does not pay compilation; `make run` re-checks it (~1.5 s warm).
$(VENV)/.installed-base: requirements/base.txt | $(PY)
	$(PIP) install --quiet -r requirements/base.txt
	$(PY) -m quant.engine.precompile
	touch $@

$(VENV)/.installed-dev: requirements/dev.txt requirements/base.txt | $(PY)
	$(PIP) install --quiet -r requirements/dev.txt
	$(PY) -m quant.engine.precompile
	touch $@

install: $(VENV)/.installed-base

install-dev: $(VENV)/.installed-dev

## Start the whole platform (web + websockets, worker, beat) on http://127.0.0.1:8000
run: install
	$(PY) manage.py migrate --no-input
	$(PY) manage.py ensure_admin
	$(PY) manage.py collectstatic --no-input --verbosity 0
	$(PY) -m quant.engine.precompile
	$(PY) manage.py serve

## Run the whole test suite (PostgreSQL/Redis on 127.0.0.1 when they answer) in two lanes:
## everything but the browser tests in parallel (pytest-xdist, TEST_WORKERS processes), then the
## browser tests in one process (one chromium, one live server). PYTEST_ARGS goes to both lanes;
## a lane that selects no test (pytest exit 5) is fine, both selecting none is an error; any other
## failure in either lane fails the target (after both have run, so one report shows everything).
TEST_WORKERS ?= auto
TEST_MAX_WORKERS ?= 8
test: install-dev
	@fast=0; browser=0; \
	echo "== tests, parallel lane (-n $(TEST_WORKERS), no browser)"; \
	$(PY) -m pytest -n $(TEST_WORKERS) --maxprocesses $(TEST_MAX_WORKERS) -m "not browser" $(PYTEST_ARGS) || fast=$$?; \
	echo "== tests, browser lane (serial)"; \
	$(PY) -m pytest -m browser $(PYTEST_ARGS) || browser=$$?; \
	echo "== lanes: parallel exit $$fast, browser exit $$browser (5 = no test selected)"; \
	if [ $$fast -eq 5 ] && [ $$browser -eq 5 ]; then echo "no test selected"; exit 5; fi; \
	for rc in $$fast $$browser; do if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then exit $$rc; fi; done

bench: install-dev
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) var/*.sqlite3 staticfiles .pytest_cache
