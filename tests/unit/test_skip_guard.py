"""CI cannot go green by skipping: `--fail-on-skip` fails a run with an unexpected skip, and scripts/test.sh
fails a full run that collected nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[2]

SKIPPING = """
import pytest

def test_runs():
    pass

@pytest.mark.skipif(True, reason="dovecot is not installed")
def test_needs_dovecot():
    pass
"""

ALLOWED_SKIP = """
import pytest

def test_runs():
    pass

def test_permission():
    pytest.skip("user namespaces are not available here")
"""


def test_an_unexpected_skip_fails_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SKIPPING)
    result = pytester.runpytest("-p", "tests.skip_guard", "--fail-on-skip")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 test(s) skipped that should have run*",
                                 "SKIPPED *test_needs_dovecot: dovecot is not installed"])


def test_without_the_option_a_skip_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SKIPPING)
    assert pytester.runpytest("-p", "tests.skip_guard").ret == pytest.ExitCode.OK


def test_an_allowed_machine_dependent_skip_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ALLOWED_SKIP)
    assert pytester.runpytest("-p", "tests.skip_guard", "--fail-on-skip").ret == pytest.ExitCode.OK


def test_a_failure_stays_a_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_fails():\n    assert False\n")
    assert pytester.runpytest("-p", "tests.skip_guard", "--fail-on-skip").ret == pytest.ExitCode.TESTS_FAILED


def test_test_sh_fails_when_nothing_is_collected_unless_filtered(tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    script = str(REPO / "scripts" / "test.sh")
    nothing = subprocess.run([script, str(empty), "-q", "-p", "no:cacheprovider"], capture_output=True, text=True,
                             timeout=120)
    assert nothing.returncode == 5, nothing.stdout + nothing.stderr
    assert "no test was collected" in nothing.stderr
    filtered = subprocess.run([script, str(tmp_path), "-q", "-k", "no_such_test", "-p", "no:cacheprovider"],
                              capture_output=True, text=True, timeout=120)
    assert filtered.returncode == 0, filtered.stdout + filtered.stderr
    ran = subprocess.run([script, str(tmp_path), "-q", "-p", "no:cacheprovider"], capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
