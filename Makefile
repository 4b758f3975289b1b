# The two commands of the README, and a few conveniences.
.PHONY: install install-dev run test unit bench lint

install:
	scripts/install.sh

install-dev:
	scripts/install.sh --dev

# Install everything, then start plait's main job on its embedded defaults.
run: install
	.venv/bin/plait up

# Install everything (with test tools), then run the whole suite, real-model tests included. A test
# skipped for a reason not allowed in tests/skip_guard.py fails the run (e.g. dovecot or espeak-ng missing).
test: install-dev
	scripts/test.sh --fail-on-skip

unit:
	scripts/test.sh tests/unit

bench:
	for b in embed generate serve index ask thresholds tasks_classify tasks_text tasks_media workflow sentiment \
		digest tune compress security scale web soak; do \
		.venv/bin/python bench/$$b.py || exit 1; done

lint:
	scripts/lint.sh
