"""Time a cold converge and an idempotent re-run of site.yml against a fresh master.

Uses the Molecule `default` scenario's hosts (create, prepare, converge twice,
destroy), prints the ten slowest tasks of the cold run and the changed counts,
and appends one JSON line to docs/benchmarks/provisioning.jsonl.

    make bench-provisioning            # or: .venv/bin/python benchmarks/provisioning.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks" / "provisioning.jsonl"
TASK_TIME = re.compile(r"^(?P<task>\S.*?) -+ (?P<seconds>\d+(?:\.\d+)?)s\s*$")
RECAP = re.compile(r"^\s*(?P<host>\S+)\s+: ok=\d+\s+changed=(?P<changed>\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;;[^\x1b]*\x1b\\")


def molecule(step: str, scenario: str) -> tuple[float, str]:
    env = os.environ | {
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
        "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "10",
        "NO_COLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    started = time.monotonic()
    done = subprocess.run(
        ["molecule", step, "-s", scenario],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = ANSI.sub("", done.stdout + done.stderr)
    if done.returncode != 0:
        sys.stderr.write(output[-4000:])
        raise SystemExit(f"molecule {step} failed (exit {done.returncode})")
    return elapsed, output


def slowest_tasks(output: str, count: int = 10) -> list[dict[str, object]]:
    tasks = []
    for raw_line in output.splitlines():
        match = TASK_TIME.match(raw_line.strip().lstrip("│").strip())
        if match:
            tasks.append({"task": match["task"], "seconds": float(match["seconds"])})
    return sorted(tasks, key=lambda task: -float(task["seconds"]))[:count]


def changed_count(output: str, host: str) -> int:
    counts = [
        int(match["changed"])
        for line in output.splitlines()
        if (match := RECAP.match(line.lstrip("│ "))) and match["host"] == host
    ]
    if not counts:
        raise SystemExit(f"no play recap for host {host!r} in the converge output")
    return sum(counts)


def machine() -> dict[str, object]:
    with Path("/proc/meminfo").open() as meminfo:
        mem_kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--host", default="master")
    args = parser.parse_args()

    molecule("destroy", args.scenario)
    try:
        molecule("create", args.scenario)
        molecule("prepare", args.scenario)
        print("cold converge ...", flush=True)
        cold_seconds, cold = molecule("converge", args.scenario)
        print("idempotent re-run ...", flush=True)
        rerun_seconds, rerun = molecule("converge", args.scenario)
    finally:
        molecule("destroy", args.scenario)

    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "scenario": args.scenario,
        "machine": machine(),
        "cold_seconds": round(cold_seconds, 1),
        "cold_changed": changed_count(cold, args.host),
        "rerun_seconds": round(rerun_seconds, 1),
        "rerun_changed": changed_count(rerun, args.host),
        "slowest_tasks": slowest_tasks(cold),
    }
    print(f"cold converge: {record['cold_seconds']} s, {record['cold_changed']} changed")
    print(f"re-run:        {record['rerun_seconds']} s, {record['rerun_changed']} changed")
    print("slowest tasks of the cold run:")
    for task in record["slowest_tasks"]:
        print(f"  {task['seconds']:7.2f} s  {task['task']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as results:
        results.write(json.dumps(record) + "\n")
    print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
