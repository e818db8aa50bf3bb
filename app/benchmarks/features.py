"""Feature-building benchmark: Dask + Arrow vs. DuckDB vs. pandas, plus the daily job.

    python app/benchmarks/features.py --events 10000000 50000000

For each size it generates synthetic raw data once (cached under --workdir), then runs every
measurement in its own subprocess so that peak RSS (from wait4) belongs to that engine only:

- full recompute of the 90-day window state from raw events: dask (scoring's own code),
  duckdb (one SQL query over the same files), pandas (read all, groupby);
- the daily incremental job: one new raw day on top of 90 days of stored partials;
- prediction throughput of the trained model (users/s).

All engines compute the same per-user aggregation (every state column of features.csv) and
the totals are cross-checked, so a faster but wrong engine would be reported as a mismatch.
Not part of the test suite. Needs duckdb (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = dt.date(2026, 1, 1)
WINDOW = 90
# Two days before the window (the incremental job slides from the previous day's state)
# and the label window after it.
EXTRA_DAYS = 5
SCORING_DATE = START + dt.timedelta(days=WINDOW + 1)  # data: START - 1 day to START + 93


def _env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SCORING_DATA_ROOT": str(root),
        "SCORING_AGGREGATION_WINDOW": str(WINDOW),
        "SCORING_DATA_DELAY": "1",
        "SCORING_DASK_ADDRESS": "",
    }


def _apply_env(root: Path) -> None:
    os.environ.update(_env(root))


def _window_files(settings, date) -> list[str]:
    from scoring import naming  # noqa: PLC0415
    from scoring.features.build import window_days  # noqa: PLC0415

    return [str(naming.raw_events_path(settings, d)) for d in window_days(settings, date)]


# --- engines (each runs in a child process) ------------------------------------------------


def engine_dask(root: Path) -> dict:
    _apply_env(root)
    from scoring.compute import get_client  # noqa: PLC0415
    from scoring.features import build  # noqa: PLC0415
    from scoring.features.spec import load_spec  # noqa: PLC0415
    from scoring.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    spec = load_spec(settings)
    get_client(settings)  # cluster start-up is not part of the aggregation
    started = time.perf_counter()
    state = build.state_from_files(settings, spec, SCORING_DATE, "raw", progress=False)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "users": state.num_rows, "checksum": _checksum(state)}


def _duckdb_sql(spec, files: list[str], cutoff: dt.date) -> str:
    """The same aggregation in two stages (per user and day, then per user).

    This was the fastest formulation tried; a single pass with count(DISTINCT day) per
    window was about twice as slow.
    """
    from scoring.data.schema import EVENT_TYPES  # noqa: PLC0415
    from scoring.features.spec import ALL_EVENTS, active_column  # noqa: PLC0415

    per_type = ", ".join(
        f"count(*) FILTER (WHERE event_type = '{t}') AS n_{t}" for t in EVENT_TYPES
    )
    columns = []
    for column, event_type, window in spec.count_columns:
        source = "n_all" if event_type == ALL_EVENTS else f"n_{event_type}"
        columns.append(f"sum({source}) FILTER (WHERE age < {window}) AS {column}")
    for window in spec.active_windows:
        columns.append(f"count(*) FILTER (WHERE age < {window}) AS {active_column(window)}")
    columns.append("max(day) AS last_day")
    file_list = ", ".join(f"'{f}'" for f in files)
    return (
        "WITH per_day AS ("
        f"  SELECT user_id, CAST(timestamp AS DATE) AS day, {per_type}, count(*) AS n_all"
        f"  FROM read_parquet([{file_list}]) GROUP BY ALL"
        ") "
        f"SELECT user_id, {', '.join(columns)} "
        f"FROM (SELECT *, DATE '{cutoff}' - day AS age FROM per_day) "
        "GROUP BY user_id ORDER BY user_id"
    )


def engine_duckdb(root: Path) -> dict:
    _apply_env(root)
    import duckdb  # noqa: PLC0415
    from scoring.features.spec import load_spec  # noqa: PLC0415
    from scoring.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    spec = load_spec(settings)
    connection = duckdb.connect()
    connection.execute("SET threads TO 2")
    query = _duckdb_sql(
        spec, _window_files(settings, SCORING_DATE), settings.feature_cutoff(SCORING_DATE)
    )
    started = time.perf_counter()
    state = connection.sql(query).to_arrow_table()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "users": state.num_rows, "checksum": _checksum(state)}


def engine_pandas(root: Path) -> dict:
    _apply_env(root)
    import pandas as pd  # noqa: PLC0415
    from scoring.features.spec import ALL_EVENTS, active_column, load_spec  # noqa: PLC0415
    from scoring.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    spec = load_spec(settings)
    cutoff = pd.Timestamp(settings.feature_cutoff(SCORING_DATE))
    started = time.perf_counter()
    events = pd.concat(
        [pd.read_parquet(f) for f in _window_files(settings, SCORING_DATE)], ignore_index=True
    )
    cutoff_day = (cutoff - pd.Timestamp("1970-01-01")).days
    # Integer day numbers and categorical types keep the groupby on fast paths.
    events["age"] = cutoff_day - events["timestamp"].to_numpy().astype("datetime64[D]").astype(
        "int64"
    )
    events["event_type"] = events["event_type"].astype("category")
    counts = (
        events.groupby(["user_id", "age", "event_type"], observed=True)
        .size()
        .unstack("event_type", fill_value=0)
    )
    counts["all"] = counts.sum(axis=1)
    counts = counts.reset_index()
    by_user = counts.groupby("user_id")
    result = pd.DataFrame(index=pd.Index(sorted(by_user.groups), name="user_id"))
    for column, event_type, window in spec.count_columns:
        source = "all" if event_type == ALL_EVENTS else event_type
        inside = counts[counts["age"] < window]
        result[column] = inside.groupby("user_id")[source].sum()
    for window in spec.active_windows:
        result[active_column(window)] = counts[counts["age"] < window].groupby("user_id").size()
    result["last_day"] = cutoff_day - by_user["age"].min()
    result = result.fillna(0)
    seconds = time.perf_counter() - started
    import pyarrow as pa  # noqa: PLC0415

    table = pa.Table.from_pandas(result.reset_index(), preserve_index=False)
    return {"seconds": seconds, "users": table.num_rows, "checksum": _checksum(table)}


def engine_incremental(root: Path) -> dict:
    """The daily job: partial of the one new raw day, then slide yesterday's window state."""
    _apply_env(root)
    from scoring import naming  # noqa: PLC0415
    from scoring.compute import get_client  # noqa: PLC0415
    from scoring.features import build  # noqa: PLC0415
    from scoring.features.spec import load_spec  # noqa: PLC0415
    from scoring.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    spec = load_spec(settings)
    get_client(settings)
    new_day = settings.feature_cutoff(SCORING_DATE)
    # Remove today's outputs so each run measures the real daily work.
    naming.daily_partial_path(settings, new_day).unlink(missing_ok=True)
    naming.window_state_path(settings, SCORING_DATE, spec.hash).unlink(missing_ok=True)
    previous = naming.window_state_path(settings, SCORING_DATE - dt.timedelta(days=1), spec.hash)
    if not previous.exists():
        raise SystemExit("incremental benchmark needs the setup step (yesterday's state)")
    started = time.perf_counter()
    state = build.window_state(settings, spec, SCORING_DATE, "incremental", progress=False)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "users": state.num_rows, "checksum": _checksum(state)}


def engine_prediction(root: Path) -> dict:
    _apply_env(root)
    from scoring import atomic, naming  # noqa: PLC0415
    from scoring.features import build  # noqa: PLC0415
    from scoring.features.spec import load_spec  # noqa: PLC0415
    from scoring.models import predict_model, train_model  # noqa: PLC0415
    from scoring.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    spec = load_spec(settings)
    state = atomic.read_arrow(naming.window_state_path(settings, SCORING_DATE, spec.hash))
    users = build.dataset.read_users(settings)
    features = build.features_from_state(
        state, users, spec, SCORING_DATE, settings.feature_cutoff(SCORING_DATE)
    )
    labelled = build.add_labels(settings, features, SCORING_DATE).to_pandas()
    model = train_model.train(
        labelled.sample(min(len(labelled), 200_000), random_state=0), "hgb", spec.names, spec.hash
    )
    frame = features.to_pandas()
    started = time.perf_counter()
    scores = predict_model.predict(model, frame)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "users": scores.num_rows, "checksum": None}


ENGINES = {
    "dask": engine_dask,
    "duckdb": engine_duckdb,
    "pandas": engine_pandas,
    "incremental": engine_incremental,
    "prediction": engine_prediction,
}


def _checksum(state) -> list[int]:
    """Column totals of the state (last_day as days since epoch) for cross-checking."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    totals = []
    for name in state.column_names[1:]:
        column = state[name]
        if pa.types.is_date(column.type):
            column = column.cast(pa.int32())
        totals.append(int(pc.sum(column.cast(pa.int64())).as_py() or 0))
    return totals


# --- orchestration ------------------------------------------------------------------------


def engine_prepare(root: Path) -> dict:
    """Generate raw data (once) and the incremental job's starting point.

    Runs in a child like the engines: Linux carries a parent's peak RSS over into the
    children it forks, so the parent must stay small for the children's numbers to hold.
    """
    events, users = json.loads((root / "request.json").read_text())
    _apply_env(root)
    from scoring.data.dataset import GeneratorConfig, generate  # noqa: PLC0415
    from scoring.features import build  # noqa: PLC0415
    from scoring.features.spec import load_spec  # noqa: PLC0415
    from scoring.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    marker = root / "generated.json"
    if not marker.exists():
        days = WINDOW + EXTRA_DAYS
        config = GeneratorConfig.for_total_events(
            events * days // WINDOW, users, days, start=START - dt.timedelta(days=1), seed=42
        )
        total = generate(config, settings)
        marker.write_text(json.dumps({"events_total": total}))
    spec = load_spec(settings)
    build.window_state(settings, spec, SCORING_DATE - dt.timedelta(days=1), "incremental")
    import pyarrow.parquet as pq  # noqa: PLC0415

    window_events = sum(pq.read_metadata(f).num_rows for f in _window_files(settings, SCORING_DATE))
    return {"seconds": 0.0, "users": users, "checksum": None, "events": window_events}


def _measure(engine: str, root: Path, repeat: int) -> dict:
    """Run one engine in a child process; add its peak RSS from the kernel's accounting."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", engine, "--root", str(root), "--repeat", str(repeat)],
        stdout=subprocess.PIPE,
        text=True,
    )
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{engine} failed with exit code {child.returncode}")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


STEPS = {**ENGINES, "prepare": engine_prepare}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "scoring-bench"
    )
    parser.add_argument("--json", type=Path, help="also write all results to this file")
    parser.add_argument("--repeat", type=int, default=2, help="runs per engine; best counts")
    parser.add_argument("--child", choices=list(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        runs = [STEPS[args.child](args.root) for _ in range(args.repeat)]
        best = min(runs, key=lambda run: run["seconds"])
        best["first_seconds"] = runs[0]["seconds"]
        print(json.dumps(best))
        return

    results = []
    for events in args.events:
        root = args.workdir / f"events-{events}-users-{args.users}"
        root.mkdir(parents=True, exist_ok=True)
        (root / "request.json").write_text(json.dumps([events, args.users]))
        window_events = _measure("prepare", root, 1)["events"]
        print(f"\n{window_events:,} events in the {WINDOW}-day window, {args.users:,} users")
        reference = None
        for engine in args.engines:
            result = _measure(engine, root, args.repeat)
            rate_unit = "users/s" if engine == "prediction" else "events/s"
            amount = result["users"] if engine == "prediction" else window_events
            result.update(engine=engine, events=window_events, rate=amount / result["seconds"])
            if result["checksum"] is not None:
                reference = reference or result["checksum"]
                result["matches"] = result["checksum"] == reference
            results.append(result)
            print(
                f"  {engine:12s} {result['seconds']:8.2f} s (first {result['first_seconds']:.2f} s)"
                f"  {result['rate']:>12,.0f} {rate_unit}"
                f"  peak RSS {result['peak_rss_mb']:7.0f} MB"
                + ("" if result.get("matches", True) else "  RESULT MISMATCH")
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
