# The two commands of the README, and a few conveniences.
.PHONY: install install-dev run test unit bench lint

install:
	scripts/install.sh

install-dev:
	scripts/install.sh --dev

# Install everything, then start plait's main job on its embedded defaults.
run: install
	.venv/bin/plait chat

# Install everything (with test tools), then run the whole suite, real-model tests included.
test: install-dev
	scripts/test.sh

unit:
	scripts/test.sh tests/unit

bench:
	.venv/bin/python bench/embed.py
	.venv/bin/python bench/generate.py

lint:
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy
