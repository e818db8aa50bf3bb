"""Time restic backups of the scoring data: a full backup, then the incremental after
one daily run, with the repository's size after each.

For each data set it generates synthetic raw events with `scoring generate` (days up to
yesterday) into a temporary data root, runs `scoring daily --local-scheduler` once, backs
the data root up into a fresh local restic repository, then adds today's raw day, runs
the daily pipeline again and backs up once more. Prints one JSON line per data set.

    .venv/bin/python benchmarks/backup.py                     # the sandbox's data set
    .venv/bin/python benchmarks/backup.py --events 10000000   # 10M events, 1M users
    .venv/bin/python benchmarks/backup.py --keep DIR          # keep the data and repository
    .venv/bin/python benchmarks/backup.py --raw-only ...      # raw events only, no pipeline

Needs restic on PATH (Debian's package) and the scoring package in the venv.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCORING = Path(sys.executable).parent / "scoring"
# `make sandbox` generates 120 days of the generator's default population.
SANDBOX_DAYS = 120


def say(message: str) -> None:
    print(f"[backup-bench] {message}", file=sys.stderr, flush=True)


def run(argv: list[str], env: dict[str, str]) -> float:
    say(" ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv)))
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write((done.stdout + done.stderr)[-4000:])
        raise SystemExit(f"{' '.join(argv[:3])} failed (exit {done.returncode})")
    return time.monotonic() - started


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def backup(repository: Path, data_root: Path, env: dict[str, str]) -> dict:
    started = time.monotonic()
    done = subprocess.run(
        ["restic", "-r", str(repository), "backup", "--json", "--quiet", str(data_root)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"restic backup failed: {done.stderr.strip()}")
    summary = next(
        message
        for message in map(json.loads, done.stdout.splitlines())
        if message.get("message_type") == "summary"
    )
    say(f"backup: {seconds:.1f} s, {summary['data_added']} bytes added")
    return {
        "seconds": round(seconds, 2),
        "data_bytes": tree_bytes(data_root),
        "files": summary["total_files_processed"],
        "added_bytes": summary["data_added"],
        "repository_bytes": tree_bytes(repository),
    }


def measure(work: Path, events: int, users: int, daily: bool = True) -> dict:
    data_root, repository = work / "data-root", work / "repository"
    env = os.environ | {
        "SCORING_DATA_ROOT": str(data_root),
        "SCORING_ENV": "dev",
        "SCORING_DASK_ADDRESS": "",
        "RESTIC_PASSWORD": "benchmark-only",
        "RESTIC_CACHE_DIR": str(work / "cache"),
    }
    today = dt.date.today()
    yesterday = today - dt.timedelta(days=1)
    first_day = today - dt.timedelta(days=SANDBOX_DAYS)
    generate = [str(SCORING), "generate", "--quiet", "--days", str(SANDBOX_DAYS)]
    generate += ["--start", first_day.isoformat()]
    if events:
        generate += ["--events", str(events), "--users", str(users)]
    timings = {"generate_seconds": round(run(generate, env), 1)}
    pipeline = [str(SCORING), "daily", "--local-scheduler"]
    if daily:
        timings["first_daily_seconds"] = round(
            run([*pipeline, "--until", yesterday.isoformat()], env), 1
        )
    run(["restic", "-r", str(repository), "init"], env)
    full = backup(repository, data_root, env)

    # One day later: that day's raw events arrive, the daily run scores it.
    new_day = [str(SCORING), "generate", "--quiet", "--days", "1", "--start", today.isoformat()]
    if events:
        new_day += ["--events", str(events // SANDBOX_DAYS), "--users", str(users)]
    run(new_day, env)
    if daily:
        timings["next_daily_seconds"] = round(
            run([*pipeline, "--until", today.isoformat()], env), 1
        )
    incremental = backup(repository, data_root, env)
    return {"full": full, "incremental": incremental, **timings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=0, help="total events (default: sandbox)")
    parser.add_argument("--users", type=int, default=1_000_000, help="users with --events")
    parser.add_argument("--keep", type=Path, help="work here and keep the result")
    parser.add_argument(
        "--raw-only", action="store_true", help="no daily runs: raw events and one new day only"
    )
    args = parser.parse_args()
    if shutil.which("restic") is None:
        raise SystemExit("restic is missing: apt-get install restic")
    restic_version = subprocess.run(
        ["restic", "version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    work = args.keep or Path(tempfile.mkdtemp(prefix="backup-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = measure(work, args.events, args.users, daily=not args.raw_only)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.release()}",
        "restic": restic_version,
        "data_set": f"{args.events} events, {args.users} users" if args.events else "sandbox",
        "daily_runs": not args.raw_only,
        **result,
    }
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
