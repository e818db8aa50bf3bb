"""Time a cold converge and an idempotent re-run of site.yml against a fresh master.

Two targets:
- `sandbox` (the default; `make bench-provisioning`): removes the sandbox, times
  `sandbox/up.yml` (what `make sandbox` runs once the images and the release archive
  are built: the container, site.yml, the first daily run and backup), then a re-run of
  `site.yml` against it. The sandbox stays up afterwards.
- `molecule` (`make bench-provisioning-molecule`): the Molecule `default` scenario's
  hosts (create, prepare, converge twice, destroy).

Prints the ten slowest tasks of the cold run (profile_tasks) and the changed counts, and
appends one JSON line to docs/benchmarks/provisioning.jsonl.

    .venv/bin/python benchmarks/provisioning.py [sandbox | molecule [--scenario S]]
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


SANDBOX_HOST = "is24de-sandbox"
BIN = Path(sys.executable).parent


def timed(argv: list[str]) -> tuple[float, str]:
    env = os.environ | {
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
        "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "10",
        "NO_COLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    output = ANSI.sub("", done.stdout + done.stderr)
    if done.returncode != 0:
        sys.stderr.write(output[-4000:])
        raise SystemExit(f"{' '.join(argv)} failed (exit {done.returncode})")
    return elapsed, output


def molecule(step: str, scenario: str) -> tuple[float, str]:
    return timed(["molecule", step, "-s", scenario])


def sandbox_playbook(playbook: str) -> tuple[float, str]:
    return timed(["ansible-playbook", "-i", "inventory/sandbox", playbook])


def run_sandbox() -> tuple[float, str, float, str]:
    sandbox_playbook("sandbox/down.yml")
    print("cold: sandbox/up.yml on a new sandbox ...", flush=True)
    cold_seconds, cold = sandbox_playbook("sandbox/up.yml")
    print("idempotent re-run of site.yml ...", flush=True)
    rerun_seconds, rerun = sandbox_playbook("site.yml")
    return cold_seconds, cold, rerun_seconds, rerun


def run_molecule(scenario: str) -> tuple[float, str, float, str]:
    molecule("destroy", scenario)
    try:
        molecule("create", scenario)
        molecule("prepare", scenario)
        print("cold converge ...", flush=True)
        cold_seconds, cold = molecule("converge", scenario)
        print("idempotent re-run ...", flush=True)
        rerun_seconds, rerun = molecule("converge", scenario)
    finally:
        molecule("destroy", scenario)
    return cold_seconds, cold, rerun_seconds, rerun


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
    parser.add_argument("target", nargs="?", choices=["sandbox", "molecule"], default="sandbox")
    parser.add_argument("--scenario", default="default", help="the Molecule scenario")
    parser.add_argument("--host", default="master", help="the Molecule scenario's master")
    args = parser.parse_args()

    if args.target == "sandbox":
        host = SANDBOX_HOST
        cold_seconds, cold, rerun_seconds, rerun = run_sandbox()
    else:
        host = args.host
        cold_seconds, cold, rerun_seconds, rerun = run_molecule(args.scenario)

    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "target": args.target,
        "scenario": args.scenario if args.target == "molecule" else None,
        "machine": machine(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "cold_seconds": round(cold_seconds, 1),
        "cold_changed": changed_count(cold, host),
        "rerun_seconds": round(rerun_seconds, 1),
        "rerun_changed": changed_count(rerun, host),
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
