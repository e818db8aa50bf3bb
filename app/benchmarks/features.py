"""Scoring benchmark: the project's code against DuckDB peers, in one run, with ratios.

    python app/benchmarks/features.py --events 10000000 50000000 --repeat 3

For each size it generates synthetic raw data once (cached under --workdir, 1,000,000
users), then measures, every run in a child process of its own so that its peak RSS
(from wait4) belongs to that run only, and ours and the peer alternating in each round:

- full recompute of the window state from raw: `ours` (build.state_from_files on Dask)
  against `duckdb` (peers.full_state, one pass), and the same warm: WARM_RUNS times in one
  process, the first run left out;
- the incremental update: the new day's partial from raw plus the slide of yesterday's
  state, `ours` (build.window_state) against the same algorithm in DuckDB (peers.slide_state);
- the whole daily job for one date, step by step: new partial, slide, test set, prediction
  with publishing (reading the test set, scoring, writing the predictions), ours
  (scoring.pipeline) against a DuckDB + scikit-learn script with the same model;
- prediction on a test set of nearly all distinct rows (benchmarks/testsets.py: account
  ages over years, long-tailed counts, a continuous attribute), the project's scoring of a
  stored feature table (pipeline.score_file) against the plain pandas + scikit-learn script;
  the share of distinct classes of this set and of the daily job's is printed;
- optionally (--backfill) a 90-date backfill from raw with 1 and 2 Dask workers.

After the runs a child compares the results as whole tables (every value and every null,
rows matched by id) and the script stops with the first difference. Best of --repeat.
Not part of the test suite. Needs duckdb (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The peers beside this script, and the scoring package of this script's own tree: an
# editable install in the venv may belong to another checkout, and a benchmark of one
# tree must not measure another's code.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

START = dt.date(2026, 1, 1)
WINDOW = 90
# Two days before the window (the slide starts from the previous day's state) and the
# label window after it.
EXTRA_DAYS = 5
SCORING_DATE = START + dt.timedelta(days=WINDOW + 1)  # data: START - 1 day to START + 93
MODEL_TYPE = "hgb"
TRAIN_ROWS = 200_000
BACKFILL_DATES = 90
THREADS = 2


def _env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SCORING_DATA_ROOT": str(root),
        "SCORING_AGGREGATION_WINDOW": str(WINDOW),
        "SCORING_DATA_DELAY": "1",
        "SCORING_DASK_ADDRESS": "",
        "SCORING_DASK_DATA_RESOURCE": "",
    }


class Context:
    """Settings, spec and the paths of one data set, in a child process."""

    def __init__(self, root: Path):
        os.environ.update(_env(root))
        # Imported before any timing, like the peers' duckdb: the first pq.read_table
        # imports pyarrow.dataset and with it pandas (0.2 s), which a daily job's process
        # has loaded long before its steps run.
        import pyarrow.dataset  # noqa: F401, PLC0415
        from scoring import naming  # noqa: PLC0415
        from scoring.features.spec import load_spec  # noqa: PLC0415
        from scoring.settings import get_settings  # noqa: PLC0415

        self.root = root
        self.naming = naming
        self.settings = get_settings()
        self.spec = load_spec(self.settings)
        self.date = SCORING_DATE
        self.cutoff = self.settings.feature_cutoff(self.date)
        self.out = root / "bench-out"
        self.duck = root / "bench-duckdb"
        self.out.mkdir(exist_ok=True)
        self.duck.mkdir(exist_ok=True)

    def window_files(self, date: dt.date) -> list[Path]:
        from scoring.features.build import window_days  # noqa: PLC0415

        return [
            self.naming.raw_events_path(self.settings, d) for d in window_days(self.settings, date)
        ]

    def state_path(self, date: dt.date) -> Path:
        return self.naming.window_state_path(self.settings, date, self.spec.hash)

    def partial_path(self, day: dt.date) -> Path:
        return self.naming.daily_partial_path(self.settings, day)

    def model_identifier(self) -> str:
        from scoring import pipeline  # noqa: PLC0415

        train_end = self.settings.train_end_for(self.date)
        return pipeline.model_identifier(self.settings, self.spec, MODEL_TYPE, train_end)

    def predictions_path(self) -> Path:
        return self.naming.predictions_path(self.settings, self.model_identifier(), self.date)

    def test_set_path(self) -> Path:
        return self.naming.test_set_path(self.settings, self.date, self.spec.hash)

    def leaving(self) -> dict[int, Path]:
        return {w: self.partial_path(self.cutoff - dt.timedelta(days=w)) for w in self.spec.windows}


def _client(context: Context, workers: int = 0):
    """The in-process cluster of scoring.compute (started before any timing)."""
    from scoring import compute  # noqa: PLC0415

    if workers:
        from distributed import Client  # noqa: PLC0415

        cluster = compute.local_cluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        compute._clients[context.settings.dask_address] = Client(cluster, set_as_default=False)
    return compute.get_client(context.settings)


def _write_arrow(table, path: Path) -> None:
    from scoring import atomic  # noqa: PLC0415

    atomic.write_arrow(table, path)


def _timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


# --- full recompute ------------------------------------------------------------------


def _full_ours(context: Context):
    """Ours' full recompute, ready to time (the in-process cluster started)."""
    from scoring.features import build  # noqa: PLC0415

    _client(context)
    return lambda: build.state_from_files(
        context.settings, context.spec, context.date, "raw", False
    )


def _full_duckdb(context: Context):
    """The peer's single-pass query, ready to time (its connection made)."""
    import peers  # noqa: PLC0415

    connection = peers.connect(THREADS)
    files = context.window_files(context.date)
    return lambda: peers.full_state(connection, context.spec, files, context.cutoff)


def run_full_ours(context: Context) -> dict:
    seconds, state = _timed(_full_ours(context))
    _write_arrow(state, context.out / "full-ours.arrow")
    return {"seconds": seconds, "rows": state.num_rows}


def run_full_duckdb(context: Context) -> dict:
    seconds, state = _timed(_full_duckdb(context))
    _write_arrow(state, context.out / "full-duckdb.arrow")
    return {"seconds": seconds, "rows": state.num_rows}


# The warm timing: the same work this many times in one process, the first run left out.
WARM_RUNS = 4


def _warm(function) -> tuple[float, object]:
    """The best time of the runs after the first, with the last result."""
    times = []
    for _ in range(WARM_RUNS):
        seconds, result = _timed(function)
        times.append(seconds)
    return min(times[1:]), result


def run_full_warm_ours(context: Context) -> dict:
    seconds, state = _warm(_full_ours(context))
    return {"seconds": seconds, "rows": state.num_rows}


def run_full_warm_duckdb(context: Context) -> dict:
    seconds, state = _warm(_full_duckdb(context))
    return {"seconds": seconds, "rows": state.num_rows}


# --- incremental: new partial + slide --------------------------------------------------


def _clear_today(context: Context) -> None:
    context.partial_path(context.cutoff).unlink(missing_ok=True)
    context.state_path(context.date).unlink(missing_ok=True)


def run_slide_ours(context: Context) -> dict:
    from scoring.features import build  # noqa: PLC0415

    _client(context)
    _clear_today(context)
    seconds, state = _timed(
        lambda: build.window_state(
            context.settings, context.spec, context.date, "incremental", False
        )
    )
    shutil.copyfile(context.state_path(context.date), context.out / "slide-ours.arrow")
    return {"seconds": seconds, "rows": state.num_rows}


def run_slide_core_ours(context: Context) -> dict:
    """The slide without the checks of every window day: what the DuckDB peer does.

    Reads and checks the new raw day, writes its partial, reads yesterday's state and the
    leaving partials, slides and writes the new state, all in this process.
    """
    from scoring import atomic  # noqa: PLC0415
    from scoring.data import dataset, partials  # noqa: PLC0415
    from scoring.features import build, window  # noqa: PLC0415

    _clear_today(context)
    raw = context.naming.raw_events_path(context.settings, context.cutoff)
    previous_path = context.state_path(context.date - dt.timedelta(days=1))
    target = context.out / "slide-core-ours.arrow"

    def work():
        partial = partials.daily_partial(dataset.read_events(raw, context.cutoff), context.cutoff)
        atomic.write_parquet(partial, context.partial_path(context.cutoff), **atomic.FAST_PARQUET)
        leaving = {w: build.read_partial(context.settings, d) for w, d in _leaving_days(context)}
        state = window.slide_state(
            atomic.read_arrow(previous_path), context.cutoff, partial, leaving, context.spec
        )
        atomic.write_arrow(state, target)
        return state

    seconds, state = _timed(work)
    context.partial_path(context.cutoff).unlink()  # made again by the checked runs
    return {"seconds": seconds, "rows": state.num_rows}


def _leaving_days(context: Context) -> list[tuple[int, dt.date]]:
    return [(w, context.cutoff - dt.timedelta(days=w)) for w in context.spec.windows]


def _duck_slide(context: Context, connection, previous, target: Path, as_parquet: bool):
    """The peer's slide: new partial from raw (DuckDB), then the slide query."""
    import peers  # noqa: PLC0415

    partial = context.duck / f"partial-{context.cutoff}.parquet"
    raw = context.naming.raw_events_path(context.settings, context.cutoff)
    peers.write_partial(connection, raw, context.cutoff, partial)
    leaving = context.leaving()
    if as_parquet:
        query = peers.slide_sql(
            context.spec,
            f"read_parquet('{previous}')",
            context.cutoff,
            f"read_parquet('{partial}')",
            {w: f"read_parquet('{p}')" for w, p in leaving.items()},
        )
        connection.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet, COMPRESSION lz4)")
        return None
    state = peers.slide_state(
        connection,
        context.spec,
        previous,
        cutoff=context.cutoff,
        new_partial=partial,
        leaving=leaving,
    )
    _write_arrow(state, target)
    return state


def run_slide_duckdb(context: Context) -> dict:
    import peers  # noqa: PLC0415
    from scoring import atomic  # noqa: PLC0415

    connection = peers.connect(THREADS)
    previous_path = context.state_path(context.date - dt.timedelta(days=1))
    target = context.out / "slide-duckdb.arrow"

    def work():
        # The same stored inputs as ours: yesterday's Arrow state, the stored partials.
        return _duck_slide(context, connection, atomic.read_arrow(previous_path), target, False)

    seconds, state = _timed(work)
    return {"seconds": seconds, "rows": state.num_rows}


# --- the whole daily job, step by step ---------------------------------------------------


def run_job_partial_ours(context: Context) -> dict:
    from scoring.features import build  # noqa: PLC0415

    _client(context)
    _clear_today(context)
    for path in (context.test_set_path(), context.predictions_path()):
        path.unlink(missing_ok=True)
    seconds, _ = _timed(
        lambda: build.ensure_daily_partials(context.settings, [context.cutoff], False)
    )
    return {"seconds": seconds}


def run_job_slide_ours(context: Context) -> dict:
    from scoring.features import build  # noqa: PLC0415

    _client(context)
    seconds, state = _timed(
        lambda: build.window_state(
            context.settings, context.spec, context.date, "incremental", False
        )
    )
    return {"seconds": seconds, "rows": state.num_rows}


def run_job_test_set_ours(context: Context) -> dict:
    from scoring import pipeline  # noqa: PLC0415

    seconds, _ = _timed(
        lambda: pipeline.write_test_set(context.settings, context.spec, context.date, False)
    )
    return {"seconds": seconds}


def run_job_predict_ours(context: Context) -> dict:
    import pyarrow.parquet as pq  # noqa: PLC0415
    from scoring import pipeline  # noqa: PLC0415

    # Started before the timing as in the other steps: a daily job's process has the
    # cluster running since its first step.
    _client(context)
    train_end = context.settings.train_end_for(context.date)
    seconds, path = _timed(
        lambda: pipeline.write_predictions(
            context.settings, context.spec, MODEL_TYPE, train_end, context.date
        )
    )
    return {"seconds": seconds, "rows": pq.read_metadata(path).num_rows}


def run_job_partial_duckdb(context: Context) -> dict:
    import peers  # noqa: PLC0415

    connection = peers.connect(THREADS)
    raw = context.naming.raw_events_path(context.settings, context.cutoff)
    partial = context.duck / f"partial-{context.cutoff}.parquet"
    for name in ("state.parquet", "test.parquet", "predictions.parquet"):
        (context.duck / name).unlink(missing_ok=True)
    partial.unlink(missing_ok=True)
    seconds, _ = _timed(lambda: peers.write_partial(connection, raw, context.cutoff, partial))
    return {"seconds": seconds}


def run_job_slide_duckdb(context: Context) -> dict:
    import peers  # noqa: PLC0415

    connection = peers.connect(THREADS)
    partial = context.duck / f"partial-{context.cutoff}.parquet"
    leaving = {w: f"read_parquet('{p}')" for w, p in context.leaving().items()}
    query = peers.slide_sql(
        context.spec,
        f"read_parquet('{context.duck / 'previous-state.parquet'}')",
        context.cutoff,
        f"read_parquet('{partial}')",
        leaving,
    )
    target = context.duck / "state.parquet"
    seconds, _ = _timed(
        lambda: connection.execute(
            f"COPY ({query}) TO '{target}' (FORMAT parquet, COMPRESSION lz4)"
        )
    )
    return {"seconds": seconds}


def run_job_test_set_duckdb(context: Context) -> dict:
    import peers  # noqa: PLC0415

    connection = peers.connect(THREADS)
    query = peers.test_set_sql(
        context.spec,
        f"read_parquet('{context.duck / 'state.parquet'}')",
        f"read_parquet('{peers.users_file(context.settings, context.cutoff)}')",
        context.date,
        context.cutoff,
    )
    target = context.duck / "test.parquet"
    seconds, _ = _timed(
        lambda: connection.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet)")
    )
    return {"seconds": seconds}


def run_job_predict_duckdb(context: Context) -> dict:
    """The plain script of `_plain_prediction`, on the daily job's test set."""
    from scoring.modeling import train  # noqa: PLC0415

    model = train.load_model(
        context.naming.model_path(context.settings, context.model_identifier())
    )

    source, target = context.duck / "test.parquet", context.duck / "predictions.parquet"
    seconds, rows = _timed(lambda: _plain_prediction(model, source, target))
    return {"seconds": seconds, "rows": rows}


# --- prediction on a test set of distinct rows ----------------------------------------------


def _distinct_paths(context: Context) -> tuple[Path, Path]:
    """Named by the generator's source, so that a changed generator makes a new set."""
    import testsets  # noqa: PLC0415

    version = hashlib.sha256(Path(testsets.__file__).read_bytes()).hexdigest()[:12]
    return (
        context.out / f"distinct-test-{version}.parquet",
        context.out / f"distinct-model-{version}.pkl",
    )


def run_distinct_prepare(context: Context) -> dict:
    """The high-cardinality test set (once) and a model trained on another draw of it."""
    import pyarrow.parquet as pq  # noqa: PLC0415
    import testsets  # noqa: PLC0415
    from scoring.modeling import train  # noqa: PLC0415

    source, model_path = _distinct_paths(context)
    names = [*context.spec.names, testsets.CONTINUOUS]
    if not source.exists() or not model_path.exists():
        _, users = json.loads((context.root / "request.json").read_text())
        sample = testsets.high_cardinality(names, TRAIN_ROWS, context.date, seed=1)
        model = train.train(sample.to_pandas(), MODEL_TYPE, names, "distinct")
        train.save_model(model, model_path)
        table = testsets.high_cardinality(names, users, context.date, seed=2)
        pq.write_table(table.drop_columns(["target"]), source)
    model = train.load_model(model_path)
    return {"seconds": 0.0, "share": testsets.class_share(model, pq.read_table(source))}


def run_distinct_ours(context: Context) -> dict:
    from scoring import atomic, pipeline  # noqa: PLC0415
    from scoring.modeling import train  # noqa: PLC0415

    source, model_path = _distinct_paths(context)
    model = train.load_model(model_path)
    _client(context)
    target = context.out / "distinct-predictions.parquet"

    def work():
        table = pipeline.score_file(context.settings, model, source, "distinct", progress=False)
        atomic.write_parquet(table, target)
        return table.num_rows

    seconds, rows = _timed(work)
    return {"seconds": seconds, "rows": rows}


def _plain_prediction(model, source: Path, target: Path) -> int:
    """The plain script: pandas reads the test set, scikit-learn scores, pandas writes."""
    import pandas as pd  # noqa: PLC0415

    frame = pd.read_parquet(source)
    scores = model.estimator.predict_proba(frame)[:, 1]  # the saved scikit-learn model
    pd.DataFrame({"id": frame["id"], "date": frame["date"], "target": scores}).to_parquet(
        target, index=False
    )
    return len(frame)


def run_distinct_peer(context: Context) -> dict:
    from scoring.modeling import train  # noqa: PLC0415

    source, model_path = _distinct_paths(context)
    model = train.load_model(model_path)
    target = context.duck / "distinct-predictions.parquet"
    seconds, rows = _timed(lambda: _plain_prediction(model, source, target))
    return {"seconds": seconds, "rows": rows}


# --- preparation and comparison ------------------------------------------------------------


def _generate(settings, events: int, users: int, days: int, seed: int) -> int:
    try:
        from scoring.data.synthetic import GeneratorConfig, generate  # noqa: PLC0415
    except ImportError:  # the generator's older home
        from scoring.data.dataset import GeneratorConfig, generate  # noqa: PLC0415
    config = GeneratorConfig.for_total_events(
        events, users, days, start=START - dt.timedelta(days=1), seed=seed
    )
    return generate(config, settings)


def _record_model(context: Context) -> None:
    """The registry's record of the benchmark's model, which publishing names in each file."""
    from scoring.modeling import train  # noqa: PLC0415
    from scoring.monitoring import registry  # noqa: PLC0415

    identifier = context.model_identifier()
    if registry.read_metadata(context.settings, identifier) is not None:
        return
    model = train.load_model(context.naming.model_path(context.settings, identifier))
    line = registry.line_of(context.settings, MODEL_TYPE, model.params, context.spec.hash)
    record = {
        "model_id": identifier,
        "line": line,
        "labels": {"hash": model.label_hash, "lead_window": context.settings.lead_window},
        "gate": {"decision": "benchmark", "reason": "trained by the benchmark"},
    }
    registry.write_metadata(context.settings, identifier, record)


def run_prepare(context: Context) -> dict:
    """Generate raw data (once), yesterday's state, a trained model, the peer's state copy."""
    events, users = json.loads((context.root / "request.json").read_text())
    from scoring.features import build  # noqa: PLC0415
    from scoring.modeling import train  # noqa: PLC0415

    settings, spec = context.settings, context.spec
    marker = context.root / "generated.json"
    if not marker.exists():
        days = WINDOW + EXTRA_DAYS
        total = _generate(settings, events * days // WINDOW, users, days, seed=42)
        marker.write_text(json.dumps({"events_total": total}))
    previous_date = context.date - dt.timedelta(days=1)
    previous = build.window_state(settings, spec, previous_date, "incremental", False)
    import pyarrow.parquet as pq  # noqa: PLC0415

    pq.write_table(previous, context.duck / "previous-state.parquet", compression="lz4")
    model_path = context.naming.model_path(settings, context.model_identifier())
    if not model_path.exists():
        features = build.build_features(settings, spec, previous_date, "incremental", False)
        labelled = build.add_labels(settings, features, previous_date).to_pandas()
        sample = labelled.sample(min(len(labelled), TRAIN_ROWS), random_state=0)
        train.save_model(train.train(sample, MODEL_TYPE, spec.names, spec.hash), model_path)
    _record_model(context)
    window_events = sum(pq.read_metadata(f).num_rows for f in context.window_files(context.date))
    return {"seconds": 0.0, "events": window_events}


def run_compare(context: Context) -> dict:
    """Whole-table equality of every engine's result with ours; raises on any difference."""
    import peers  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415
    from scoring import atomic  # noqa: PLC0415

    out, duck = context.out, context.duck
    full = atomic.read_arrow(out / "full-ours.arrow")
    checks = [
        ("full recompute: duckdb vs ours", full, atomic.read_arrow(out / "full-duckdb.arrow")),
        ("incremental: ours vs full recompute", full, atomic.read_arrow(out / "slide-ours.arrow")),
        ("incremental: duckdb vs ours", full, atomic.read_arrow(out / "slide-duckdb.arrow")),
        ("slide only: ours vs full", full, atomic.read_arrow(out / "slide-core-ours.arrow")),
        ("daily job state: duckdb vs ours", full, pq.read_table(duck / "state.parquet")),
        (
            "daily job test set: duckdb vs ours",
            pq.read_table(context.test_set_path()),
            pq.read_table(duck / "test.parquet"),
        ),
        (
            "daily job predictions: duckdb + scikit-learn vs ours",
            pq.read_table(context.predictions_path()),
            pq.read_table(duck / "predictions.parquet"),
        ),
        (
            "distinct rows' predictions: scikit-learn vs ours",
            pq.read_table(out / "distinct-predictions.parquet"),
            pq.read_table(duck / "distinct-predictions.parquet"),
        ),
    ]
    for what, expected, actual in checks:
        peers.compare_tables(expected, actual, what)
    import testsets  # noqa: PLC0415
    from scoring.modeling import train  # noqa: PLC0415

    model_path = context.naming.model_path(context.settings, context.model_identifier())
    model = train.load_model(model_path)
    share = testsets.class_share(model, pq.read_table(context.test_set_path()))
    return {"seconds": 0.0, "checked": [what for what, _, _ in checks], "share": share}


# --- backfill ----------------------------------------------------------------------------


def run_backfill_prepare(context: Context) -> dict:
    events, users = json.loads((context.root / "request.json").read_text())
    marker = context.root / "generated.json"
    if not marker.exists():
        days = WINDOW + BACKFILL_DATES + EXTRA_DAYS
        total = _generate(context.settings, events * days // WINDOW, users, days, seed=7)
        marker.write_text(json.dumps({"events_total": total}))
    return {"seconds": 0.0}


def run_backfill(context: Context) -> dict:
    """90 dates from raw only: partials (Dask), first window (Dask), then date by date."""
    from scoring import pipeline  # noqa: PLC0415
    from scoring.features import build  # noqa: PLC0415
    from scoring.modeling import train  # noqa: PLC0415

    workers = int(os.environ["BENCH_WORKERS"])
    settings, spec = context.settings, context.spec
    for directory in (settings.interim_dir, settings.test_dir, settings.predictions_dir):
        shutil.rmtree(directory, ignore_errors=True)
    settings.ensure_dirs()
    _client(context, workers)
    first = START + dt.timedelta(days=WINDOW + 1)
    dates = [first + dt.timedelta(days=i) for i in range(BACKFILL_DATES)]
    days = sorted({d for date in dates for d in build.window_days(settings, date)})
    times = {}
    times["partials"], _ = _timed(lambda: build.ensure_daily_partials(settings, days, False))
    times["first window"], _ = _timed(
        lambda: build.window_state(settings, spec, first, "incremental", False)
    )
    train_end = settings.train_end_for(first)
    model_path = context.naming.model_path(
        settings, pipeline.model_identifier(settings, spec, MODEL_TYPE, train_end)
    )
    if not model_path.exists():  # trained once, outside the timing, on the first date
        features = build.build_features(settings, spec, first, "incremental", False)
        labelled = build.add_labels(settings, features, first).to_pandas()
        sample = labelled.sample(min(len(labelled), TRAIN_ROWS), random_state=0)
        train.save_model(train.train(sample, MODEL_TYPE, spec.names, spec.hash), model_path)
    times.update({"slides": 0.0, "test sets": 0.0, "predictions": 0.0})
    for date in dates:
        if date != first:
            seconds, _ = _timed(
                lambda d=date: build.window_state(settings, spec, d, "incremental", False)
            )
            times["slides"] += seconds
        seconds, _ = _timed(lambda d=date: pipeline.write_test_set(settings, spec, d, False))
        times["test sets"] += seconds
        seconds, _ = _timed(
            lambda d=date: pipeline.write_predictions(settings, spec, MODEL_TYPE, train_end, d)
        )
        times["predictions"] += seconds
    return {"seconds": sum(times.values()), "steps": times, "days": len(days)}


RUNS = {
    name.removeprefix("run_"): function
    for name, function in globals().items()
    if name.startswith("run_")
}
PAIRS = {
    "full recompute": ("full_ours", "full_duckdb"),
    "full recompute, warm": ("full_warm_ours", "full_warm_duckdb"),
    "incremental": ("slide_ours", "slide_duckdb"),
    "incremental, slide only": ("slide_core_ours", "slide_duckdb"),
    "prediction, distinct rows": ("distinct_ours", "distinct_peer"),
}
JOB_STEPS = ["partial", "slide", "test_set", "predict"]
PARTS = [*PAIRS, "daily job"]


# --- orchestration -------------------------------------------------------------------------


def _measure(run: str, root: Path, extra_env: dict[str, str] | None = None) -> dict:
    """One run in a child process, with its peak RSS from the kernel's accounting.

    Children, not the parent, do all data work: Linux carries a parent's peak RSS over
    into the children it forks, so the parent must stay small for the numbers to hold.
    """
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", run, "--root", str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(extra_env or {})},
    )
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{run} failed (exit code {os.waitstatus_to_exitcode(status)})")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def _best(runs: list[dict]) -> dict:
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["all_seconds"] = [round(r["seconds"], 3) for r in runs]
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return best


def _machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
        check=False,
    ).stdout.strip()
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        # A copy of the tree outside git (to measure a fixed state) names its commit here.
        "commit": os.environ.get("SCORING_BENCH_COMMIT") or commit or "unknown",
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory_kib / 2**20, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average": os.getloadavg(),
    }


def _line(label: str, ours: dict, peer: dict, unit_rows: int | None = None) -> str:
    ratio = peer["seconds"] / ours["seconds"]
    text = (
        f"  {label:22s} ours {ours['seconds']:7.3f} s  {ours['peak_rss_mb']:6.0f} MB"
        f" | peer {peer['seconds']:7.3f} s  {peer['peak_rss_mb']:6.0f} MB"
        f" | ours {ratio:5.2f}x the peer's throughput"
    )
    if unit_rows:
        text += (
            f" ({unit_rows / ours['seconds']:,.0f} vs {unit_rows / peer['seconds']:,.0f} users/s)"
        )
    return text


def bench_size(args, events: int) -> dict:
    root = args.workdir / f"events-{events}-users-{args.users}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "request.json").write_text(json.dumps([events, args.users]))
    window_events = _measure("prepare", root)["events"]
    distinct_share = None
    if "prediction, distinct rows" in args.parts:
        distinct_share = _measure("distinct_prepare", root)["share"]
    runs: dict[str, list[dict]] = {}
    order = [run for label, pair in PAIRS.items() if label in args.parts for run in pair]
    order = list(dict.fromkeys(order))  # a peer shared by two pairs runs once per round
    if "daily job" in args.parts:
        order += [f"job_{step}_{who}" for who in ("ours", "duckdb") for step in JOB_STEPS]
    for round_ in range(args.repeat):
        # Ours and the peer alternate within each round, so background load hits both.
        for run in order:
            runs.setdefault(run, []).append(_measure(run, root))
        print(f"  round {round_ + 1} of {args.repeat} done", flush=True)
    best = {run: _best(results) for run, results in runs.items()}
    print(f"\n{window_events:,} events in the {WINDOW}-day window, {args.users:,} users")
    for label, (ours, peer) in PAIRS.items():
        if label in args.parts:
            rows = best[ours].get("rows") if label.startswith("prediction") else None
            print(_line(label, best[ours], best[peer], rows))
    if distinct_share is not None:
        print(f"  distinct rows' test set: {distinct_share:.1%} of its rows are distinct classes")
    result = {"events": window_events, "users": args.users, "runs": best}
    result["distinct_share"] = distinct_share
    if args.parts != PARTS:
        return result
    compared = _measure("compare", root)
    checked = compared["checked"]
    print(f"  daily job's test set: {compared['share']:.1%} of its rows are distinct classes")
    users = best["job_predict_ours"]["rows"]
    totals = {}
    for who in ("ours", "duckdb"):
        totals[who] = {
            "seconds": sum(best[f"job_{s}_{who}"]["seconds"] for s in JOB_STEPS),
            "peak_rss_mb": max(best[f"job_{s}_{who}"]["peak_rss_mb"] for s in JOB_STEPS),
        }
    for step in JOB_STEPS:
        print(
            _line(
                f"daily job: {step}",
                best[f"job_{step}_ours"],
                best[f"job_{step}_duckdb"],
                users if step == "predict" else None,
            )
        )
    print(_line("daily job: total", totals["ours"], totals["duckdb"]))
    print(f"  equal as whole tables: {'; '.join(checked)}")
    return {**result, "job_totals": totals, "job_share": compared["share"]}


def bench_backfill(args) -> dict:
    users = args.backfill_users
    root = args.workdir / f"backfill-events-{args.backfill_events}-users-{users}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "request.json").write_text(json.dumps([args.backfill_events, users]))
    _measure("backfill_prepare", root)
    results = {}
    for workers in (1, 2):
        result = _measure("backfill", root, {"BENCH_WORKERS": str(workers)})
        results[workers] = result
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in result["steps"].items())
        print(
            f"  backfill of {BACKFILL_DATES} dates, {workers} worker(s) x 1 thread: "
            f"{result['seconds']:.1f} s ({steps}), peak RSS {result['peak_rss_mb']:.0f} MB"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="*", default=[10_000_000])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "scoring-bench"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best run counts")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=PARTS,
        help="what to time (the whole-table comparison needs all of them)",
    )
    parser.add_argument("--backfill", action="store_true", help="also time a 90-date backfill")
    parser.add_argument("--backfill-events", type=int, default=2_000_000)
    parser.add_argument("--backfill-users", type=int, default=200_000)
    parser.add_argument("--json", type=Path, help="also write all results to this file")
    parser.add_argument("--child", choices=list(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(RUNS[args.child](Context(args.root))))
        return

    machine = _machine()
    print(json.dumps(machine))
    results = {"machine": machine, "sizes": [], "command": " ".join(sys.argv)}
    for events in args.events:
        results["sizes"].append(bench_size(args, events))
    if args.backfill:
        results["backfill"] = bench_backfill(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
