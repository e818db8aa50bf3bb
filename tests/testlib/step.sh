#!/usr/bin/env bash
# One step of `make test`: `tests/testlib/step.sh NAME COMMAND...` runs COMMAND with each
# line of its output prefixed by [NAME] (the two lanes share one terminal), and keeps in
# .cache/test-results/ what the summary at the end reads: NAME.log (the output),
# NAME.xml (pytest's JUnit report, of whichever pytest the step runs) and NAME.rc.
set -uo pipefail
name=$1
shift
results=.cache/test-results
mkdir -p "$results"
rm -f "$results/$name".{log,xml,rc}
PYTEST_ADDOPTS="--junitxml=$PWD/$results/$name.xml ${PYTEST_ADDOPTS:-}" "$@" 2>&1 |
  tee "$results/$name.log" | sed -u "s/^/[$name] /"
rc=${PIPESTATUS[0]}
echo "$rc" >"$results/$name.rc"
exit "$rc"
