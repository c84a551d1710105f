# Quick start: `make run` (a demo node in var/demo) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO ?= var/demo
PYTEST_ARGS ?=

.PHONY: run test install lint bench clean screenshots axe

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/diwan --data-dir $(DEMO) up

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# axe-core (the browser test's accessibility checker) from the npm registry into .cache/axe;
# never served to users: the test injects it into the page.
AXE_VERSION := 4.14.1
AXE_JS := .cache/axe/node_modules/axe-core/axe.min.js
$(AXE_JS):
	npm install --no-save --no-audit --no-fund --prefix .cache/axe axe-core@$(AXE_VERSION)
axe: $(AXE_JS)

# The browser test's screenshots, into docs/screenshots (needs chromium; see test_browser.py).
screenshots: install axe
	mkdir -p docs/screenshots
	SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q \
		tests/integration/test_browser.py

lint: install
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/ruff check app scheduler tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache
