"""What failed in `make test`, repeated at the end of its output.

The two lanes' lines interleave, and a failing test's report can be thousands of lines
above the end, where a CI log is often cut. Each step (tests/testlib/step.sh) leaves its
output, pytest's JUnit report and its exit code in one directory; this prints, for every
step that failed, its failed tests with the end of each one's report, or, when no test
failed (a converge, an idempotence check), the step's error lines. The names of what
failed come last of all.

    python tests/testlib/failures.py .cache/test-results
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

# The end of a failure's report: the assertion and the lines that lead to it.
REPORT_LINES = 15
ERROR_LINES = 12
LINE_LENGTH = 300
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Where Ansible and Molecule say what went wrong, when no test failed.
STEP_ERROR = re.compile(r"fatal:|FAILED!|ERROR|Error|error:|Traceback")


@dataclass(frozen=True)
class Failure:
    test: str
    report: list[str]


def failed_tests(report: Path) -> list[Failure]:
    """The failed and erroring tests of one JUnit report, in the order they ran."""
    try:
        root = ET.parse(report).getroot()
    except (OSError, ET.ParseError):
        return []
    failures = []
    for case in root.iter("testcase"):
        for outcome in ("failure", "error"):
            for element in case.findall(outcome):
                test = f"{case.get('classname', '')}::{case.get('name', '')}"
                if outcome == "error":
                    test += " (error)"
                text = element.text or element.get("message", "")
                failures.append(Failure(test, text.splitlines()[-REPORT_LINES:]))
    return failures


def step_errors(log: Path) -> list[str]:
    """The lines of a step's output that report an error, the last of them."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    plain = [ANSI.sub("", line).rstrip() for line in lines]
    errors = [line for line in plain if STEP_ERROR.search(line)]
    return (errors or plain)[-ERROR_LINES:]


def exit_code(step: Path) -> int:
    try:
        return int(step.read_text().strip())
    except (OSError, ValueError):
        return 0


def summary(results: Path) -> list[str]:
    """The lines to print: every failed step's failed tests or error lines, then their names."""
    lines: list[str] = []
    names: list[str] = []
    for rc_file in sorted(results.glob("*.rc")):
        step = rc_file.stem
        code = exit_code(rc_file)
        if code == 0:
            continue
        failures = failed_tests(results / f"{step}.xml")
        lines.append(f"=== [{step}] failed (exit {code}) ===")
        for failure in failures:
            lines.append(f"--- {failure.test}")
            lines.extend(f"    {line}"[:LINE_LENGTH] for line in failure.report)
            names.append(f"[{step}] {failure.test}")
        if not failures:
            lines.append("no test failed; the step's error lines:")
            errors = step_errors(results / f"{step}.log")
            lines.extend(f"    {line}"[:LINE_LENGTH] for line in errors)
            names.append(f"[{step}] (no test failed: see its error lines above)")
    if names:
        lines.append("=== what failed ===")
        lines.extend(names)
    return lines


def main(argv: list[str]) -> int:
    results = Path(argv[1]) if len(argv) > 1 else Path(".cache/test-results")
    print("\n".join(summary(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
