"""`scoring` command line: every pipeline command runs luigi tasks through `luigi.build`.

Without `--local-scheduler` the tasks go to the central scheduler named by the normal luigi
configuration (LUIGI_CONFIG_PATH, `[core] default_scheduler_url`). The exit code is 0 only if
every scheduled task succeeded; expected problems print one line, not a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Sequence

import luigi

from scoring.errors import ScoringError
from scoring.settings import get_settings, parse_date

EXIT_USER_ERROR = 2
EXIT_TASK_FAILED = 1
EXIT_DRIFT = 3
_failures: list[tuple[str, BaseException]] = []


@luigi.Task.event_handler(luigi.Event.FAILURE)
def _remember_failure(task: luigi.Task, exception: BaseException) -> None:
    _failures.append((task.task_id, exception))


class _ShortScoringErrors(logging.Filter):
    """Log expected errors raised inside tasks as one line, keep tracebacks for bugs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ScoringError):
            record.msg = f"{record.getMessage()}: {record.exc_info[1]}"
            record.args = ()
            record.exc_info = None
        return True


def build_tasks(tasks: list[luigi.Task], args: argparse.Namespace) -> int:
    """Build `tasks` with luigi; returns the process exit code."""
    _failures.clear()
    options: dict[str, object] = {
        "workers": args.workers,
        "log_level": "DEBUG" if args.verbose else "WARNING",
    }
    if args.local_scheduler:
        options["local_scheduler"] = True
    logging.getLogger("luigi-interface").addFilter(_ShortScoringErrors())
    result = luigi.build(tasks, detailed_summary=True, **options)
    ok = result.status in (
        luigi.LuigiStatusCode.SUCCESS,
        luigi.LuigiStatusCode.SUCCESS_WITH_RETRY,
    )
    if not ok:
        print(result.summary_text, file=sys.stderr)
        for task_id, exception in _failures:
            print(f"error: {task_id}: {exception}", file=sys.stderr)
    return 0 if ok else EXIT_TASK_FAILED


# --- commands ---------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    from scoring.data.synthetic import GeneratorConfig, generate  # noqa: PLC0415

    settings = get_settings()
    if settings.env == "production" and not args.force:
        raise ScoringError(
            "refusing to write synthetic raw data in production (SCORING_ENV=production); "
            "pass --force if this data root really is a scratch area"
        )
    if args.events:
        config = GeneratorConfig.for_total_events(
            args.events, args.users, args.days, start=args.start, seed=args.seed
        )
    else:
        config = GeneratorConfig(
            users=args.users,
            days=args.days,
            start=args.start,
            events_per_user_day=args.events_per_user_day,
            seed=args.seed,
        )
    total = generate(config, settings, progress=not args.quiet)
    print(f"wrote {total} events for {config.users} users, {config.start} to {config.end}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from scoring.tasks import TrainModel  # noqa: PLC0415

    settings = get_settings()
    train_end = args.train_end or settings.train_end_for(settings.today)
    return build_tasks([TrainModel(model_type=args.model_type or None, train_end=train_end)], args)


def cmd_predict(args: argparse.Namespace) -> int:
    from scoring.tasks import Predict  # noqa: PLC0415

    return build_tasks([Predict(date=args.date, model_type=args.model_type or None)], args)


def cmd_daily(args: argparse.Namespace) -> int:
    from scoring.tasks import DailyBackfill  # noqa: PLC0415

    task = DailyBackfill(date=args.until, days_back=args.days_back, model_type=args.model_type)
    code = build_tasks([task], args)
    if code:
        return code
    # The scores are published by now; drift of the date is reported as its own status.
    return _drift_status(task.date, args.model_type or get_settings().model_type)


def _drift_status(date: dt.date, model_type: str) -> int:
    """EXIT_DRIFT, with one error line, if the recorded drift of `date` is above the
    threshold; 0 otherwise."""
    from scoring.features.spec import load_spec  # noqa: PLC0415
    from scoring.monitoring import drift, report  # noqa: PLC0415

    settings = get_settings()
    line = report.line_for(settings, load_spec(settings), model_type)
    record = report.read_drift_record(settings, date, line)
    if record is None:
        raise ScoringError(f"no drift record for {date}; the daily run should have written it")
    limit = drift.threshold()
    columns = report.drifted(record, limit)
    if columns:
        print(
            f"error: drift on {date} against the training data of {record['model_id'].iloc[0]}: "
            f"{', '.join(columns)} above PSI {limit} or Wasserstein "
            f"{drift.wasserstein_threshold()} (scores are published; "
            f"see {report.drift_record_path(settings, date, line)})",
            file=sys.stderr,
        )
        return EXIT_DRIFT
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from scoring.tasks import Backtest  # noqa: PLC0415

    settings = get_settings()
    end = args.end or settings.latest_labelled_date(settings.today)
    task = Backtest(end=end, count=args.count, step=args.step, model_types=tuple(args.models))
    code = build_tasks([task], args)
    if code == 0:
        print(task.output().path)
    return code


def cmd_models(args: argparse.Namespace) -> int:
    from scoring.monitoring import registry  # noqa: PLC0415

    settings = get_settings()
    if args.action in {"promote", "rollback"}:
        if args.action == "promote" and not args.model_id:
            raise ScoringError("scoring models promote needs a model ID (see scoring models)")
        if args.model_id:
            registry.read_record(settings, args.model_id)  # a clear error for an unknown id
        current = registry.production(settings)
        if args.action == "rollback" and args.model_id and args.model_id != current:
            # Rolling back undoes the latest decision: a model id that is not production
            # would be read as "roll back to it" and silently do something else.
            raise ScoringError(
                f"{args.model_id} is not production ({current}): rollback undoes the latest "
                f"decision; to serve {args.model_id}, run `scoring models promote "
                f"{args.model_id}`"
            )
        if args.action == "promote":
            entry = registry.promote(settings, args.model_id, args.reason)
        else:
            entry = registry.rollback(settings, args.reason)
        print(
            f"{entry['action']} (decision {entry['seq']} by {entry['by']}): {entry['model']} "
            f"is production (was {entry['previous']})"
        )
        if args.no_republish:
            print(
                f"today's scores are not re-published (--no-republish); the next daily run "
                f"scores {settings.today} with {entry['model']}"
            )
        else:
            print(_republish(settings, entry))
        return 0
    rows = registry.list_models(settings)
    if not rows:
        print(f"no models under {settings.models_dir}")
    for row in rows:
        metrics = row.get("holdout_metrics") or {}
        auc = metrics.get("auc")
        print(
            f"{'*' if row['current'] else ' '} {row['model_id']}  "
            f"{row['train_start']}..{row['train_end']}  rows {row['train_rows']}  "
            f"positives {row['train_positives']}  holdout AUC "
            f"{'n/a' if auc is None else f'{auc:.3f}'}  {row.get('gate', {}).get('decision', '')}"
        )
    _print_history(settings)
    return 0


def _print_history(settings) -> None:
    from scoring.monitoring import registry  # noqa: PLC0415

    history = registry.read_history(settings)
    print(f"decisions ({registry.history_path(settings)}), newest last:")
    current = registry.current_decision(settings, history)
    for entry in history:
        mark = "*" if current and entry["seq"] == current["seq"] else " "
        print(
            f"{mark} {entry['seq']:>3} {entry['at']}  {entry['action']:<8} {entry['model']}"
            f"  by {entry['by']}  (was {entry['previous']})  {entry.get('reason', '')}"
        )


def _republish(settings, entry: dict) -> str:
    """Score today with the model that just became production and publish it."""
    from scoring import naming, pipeline  # noqa: PLC0415
    from scoring.features.spec import load_spec  # noqa: PLC0415
    from scoring.monitoring import registry  # noqa: PLC0415

    spec = load_spec(settings)
    today = settings.today
    record = registry.read_record(settings, entry["model"])
    if not naming.test_set_path(settings, today, spec.hash).exists():
        return (
            f"today's test set ({today}) is not built yet: the next daily run publishes "
            f"today's scores with {entry['model']}"
        )
    path = pipeline.write_predictions(
        settings,
        spec,
        record["model_type"],
        settings.train_end_for(today),
        today,
        progress=False,
    )
    return f"re-published today's scores ({today}) with {entry['model']}: {path}"


def cmd_drift(args: argparse.Namespace) -> int:
    from scoring.features.spec import load_spec  # noqa: PLC0415
    from scoring.monitoring import drift  # noqa: PLC0415

    settings = get_settings()
    date = args.date or settings.today
    model_type = args.model_type or settings.model_type
    model_id, table = drift.drift_of_date(settings, load_spec(settings), model_type, date)
    if args.record:
        from scoring.monitoring import report  # noqa: PLC0415

        report.record_drift(settings, date, model_id, table)
    limit, distance = drift.threshold(), drift.wasserstein_threshold()
    over = drift.drifted(table, limit, distance)
    drifted = table[over]
    for row, flag in zip(table.itertuples(), over, strict=True):
        print(
            f"{row.column:24} PSI {row.psi:.4f}  Wasserstein {row.wasserstein:.4f}"
            f"{'  DRIFT' if flag else ''}"
        )
    if len(drifted):
        print(
            f"error: drift on {date} against the training data of {model_id}: "
            f"{', '.join(drifted['column'])} above PSI {limit} or Wasserstein {distance}",
            file=sys.stderr,
        )
        return EXIT_DRIFT
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from scoring.features.spec import load_spec  # noqa: PLC0415
    from scoring.monitoring import report  # noqa: PLC0415

    settings = get_settings()
    model_type = args.model_type or settings.model_type
    print(
        report.write_report(settings, load_spec(settings), model_type, args.date or settings.today)
    )
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    from scoring.smoke import run_smoke  # noqa: PLC0415

    return run_smoke(keep=args.keep, local_scheduler=args.local_scheduler or not args.central)


# --- argument parsing -------------------------------------------------------------------


def _date(text: str) -> dt.date:
    try:
        return parse_date(text)
    except ScoringError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _luigi_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--local-scheduler",
        action="store_true",
        help="schedule in this process instead of the central luigid",
    )
    parser.add_argument("--workers", type=int, default=1, help="luigi worker processes")
    parser.add_argument("-v", "--verbose", action="store_true", help="show luigi's log")
    parser.add_argument("--model-type", default="", help="hgb or activity (SCORING_MODEL_TYPE)")


def _models_parser(commands) -> None:
    models = commands.add_parser(
        "models",
        help="list the models (* marks production) and the history of decisions, promote "
        "a model or roll back the latest decision; promote and rollback re-publish today's "
        "scores",
    )
    models.add_argument(
        "action", nargs="?", default="list", choices=["list", "promote", "rollback"]
    )
    models.add_argument(
        "model_id",
        nargs="?",
        default="",
        help="model ID to promote (see scoring models); rollback takes none, or the production "
        "model's ID as a check",
    )
    models.add_argument("--reason", default="", help="why, recorded in the history")
    models.add_argument(
        "--no-republish",
        action="store_true",
        help="change production only; today's scores stay until the next daily run",
    )
    models.set_defaults(handler=cmd_models)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scoring",
        description="Daily conversion scores for portal users. Configuration comes from "
        "SCORING_* environment variables; see the README.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write synthetic raw data")
    generate.add_argument("--users", type=int, default=2000)
    generate.add_argument("--days", type=int, default=120)
    generate.add_argument("--start", type=_date, default=dt.date(2026, 6, 1))
    generate.add_argument("--events-per-user-day", type=float, default=0.5)
    generate.add_argument("--events", type=int, default=0, help="total events (overrides rate)")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--force", action="store_true", help="allow in production")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")
    generate.set_defaults(handler=cmd_generate)

    train = commands.add_parser("train", help="train the model current today (or --train-end)")
    train.add_argument("--train-end", type=_date, default=None)
    _luigi_options(train)
    train.set_defaults(handler=cmd_train)

    predict = commands.add_parser("predict", help="score one date")
    predict.add_argument("--date", type=_date, required=True)
    _luigi_options(predict)
    predict.set_defaults(handler=cmd_predict)

    daily = commands.add_parser(
        "daily",
        help="score today and every missed day before it, evaluate, check drift, report; "
        f"exit {EXIT_DRIFT} on drift after publishing",
    )
    daily.add_argument("--until", type=_date, default=None, help="last date (default today)")
    daily.add_argument("--days-back", type=int, default=None, help="SCORING_BACKFILL_DAYS")
    _luigi_options(daily)
    daily.set_defaults(handler=cmd_daily)

    backtest = commands.add_parser("backtest", help="score past dates, write figures+report")
    backtest.add_argument("--end", type=_date, default=None, help="last backtested date")
    backtest.add_argument("--count", type=int, default=4, help="number of dates")
    backtest.add_argument("--step", type=int, default=7, help="days between dates")
    backtest.add_argument("--models", nargs="+", default=["hgb", "activity"])
    _luigi_options(backtest)
    backtest.set_defaults(handler=cmd_backtest)

    _models_parser(commands)

    drift = commands.add_parser(
        "drift", help=f"PSI of features and score vs. training data; exit {EXIT_DRIFT} on drift"
    )
    drift.add_argument("--date", type=_date, default=None, help="scored date (default today)")
    drift.add_argument("--model-type", default="", help="hgb or activity (SCORING_MODEL_TYPE)")
    drift.add_argument(
        "--record",
        action="store_true",
        help="also record it as the drift of the date (reports/drift/, reports/drift.csv)",
    )
    drift.set_defaults(handler=cmd_drift)

    report = commands.add_parser(
        "report", help="write the HTML model report of a date (reports/monitoring-*.html)"
    )
    report.add_argument("--date", type=_date, default=None, help="report date (default today)")
    report.add_argument("--model-type", default="", help="hgb or activity (SCORING_MODEL_TYPE)")
    report.set_defaults(handler=cmd_report)

    smoke = commands.add_parser("smoke", help="tiny end-to-end run in a temporary directory")
    smoke.add_argument("--keep", action="store_true", help="keep the temporary directory")
    smoke.add_argument(
        "--central", action="store_true", help="use the central luigid from the luigi config"
    )
    smoke.add_argument("--local-scheduler", action="store_true", help=argparse.SUPPRESS)
    smoke.set_defaults(handler=cmd_smoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ScoringError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
