"""``--fail-on-skip``: a run in which a test that should have run was skipped fails.

`make test` (and so CI) passes it, so a missing system package (dovecot, espeak-ng), a missing extra or a
broken import cannot turn the suite green by skipping what it should prove. A few skips depend on the
machine in ways plait's setup cannot change (no user namespaces for a permission test run as root); their
reasons are listed in ``ALLOWED``, and every other skip fails the run with its reason.
"""

from __future__ import annotations

import re

import pytest

# Skip reasons that are legitimately machine-dependent: plait's setup cannot change them.
ALLOWED = (
    re.compile(r"running as root without unshare"),
    re.compile(r"user namespaces are not available"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fail-on-skip", action="store_true",
                     help="fail the run when a test is skipped for a reason not in tests/skip_guard.py's ALLOWED")


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def unexpected(reports: list[pytest.TestReport]) -> list[tuple[str, str]]:
    """(test id, reason) of the skips whose reason is not allowed."""
    out = []
    for report in reports:
        reason = _reason(report)
        if not any(pattern.search(reason) for pattern in ALLOWED):
            out.append((report.nodeid, reason))
    return out


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not config.getoption("--fail-on-skip"):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    skipped = list(reporter.stats.get("skipped", [])) if reporter is not None else []
    bad = unexpected(skipped)
    if not bad:
        return
    if reporter is not None:
        reporter.write_sep("=", f"{len(bad)} test(s) skipped that should have run (--fail-on-skip)", red=True)
        for nodeid, reason in bad:
            reporter.write_line(f"SKIPPED {nodeid}: {reason}")
        reporter.write_line("Install what they need (scripts/install.sh --dev; scripts/system-packages.sh), or, "
                            "when a reason is legitimately machine-dependent, allow it in tests/skip_guard.py.")
    if session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
