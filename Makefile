# The two commands that matter: `make serve` and `make test`. Both bootstrap their own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JS     := tests/js/node_modules/.installed

.PHONY: serve test test-real lint typecheck unit bench bench-real bench-tus screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# Real JavaScript clients the tests drive (tus-js-client), pinned by tests/js/package-lock.json.
$(JS): tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $(JS)

serve: $(STAMP)
	$(BIN)/gateway serve

lint: $(STAMP)
	$(BIN)/ruff check gateway tests benchmarks
	$(BIN)/ruff format --check gateway tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(JS)
	$(BIN)/pytest -q

test: lint typecheck unit

# The same backend-facing suites against Ceph radosgw + DynamoDB Local in a private network namespace.
test-real: $(STAMP) $(JS)
	bash scripts/real-lane.sh install
	bash scripts/real-lane.sh run -- env TEST_BACKENDS=real $(BIN)/pytest -q $(PYTEST_ARGS)

# Small requests side by side with nginx and a bare aiohttp handler (needs Debian's wrk and nginx), then
# big transfers per backend pair.
bench: $(STAMP)
	command -v wrk >/dev/null && test -x /usr/sbin/nginx || apt-get install -y -q wrk nginx-light
	$(BIN)/python benchmarks/per_request.py
	$(BIN)/python benchmarks/link_calls.py --pairs moto
	$(BIN)/python benchmarks/stream.py --size-mib 2048 --pairs local,moto

# tus uploads side by side with the official Node server (@tus/server from npm), same file and client.
BENCH_JS := benchmarks/js/node_modules/.installed
$(BENCH_JS): benchmarks/js/package.json benchmarks/js/package-lock.json
	cd benchmarks/js && npm ci --no-audit --no-fund --loglevel=error
	touch $(BENCH_JS)

bench-tus: $(STAMP) $(JS) $(BENCH_JS)
	cd benchmarks && ../$(BIN)/python tus.py --size-mib 2048

bench-real: $(STAMP)
	command -v wrk >/dev/null || apt-get install -y -q wrk
	bash scripts/real-lane.sh install
	bash scripts/real-lane.sh run -- sh -c '$(BIN)/python benchmarks/stream.py --size-mib 1024 --pairs real \
	  && $(BIN)/python benchmarks/load.py --pairs real && $(BIN)/python benchmarks/link_calls.py --pairs real \
	  && $(BIN)/python benchmarks/zip.py --pairs real'

# The pages photographed by their browser tests, kept under docs/screenshots (shown in the README).
screenshots: $(STAMP)
	PAGE_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/test_pages_browser.py -k local

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
