"""`scoring-luigid`: luigi's central scheduler with task history working on SQLAlchemy 2.

luigi 3.8.1 (the newest release, and the only one published as a wheel) creates its task
history tables fine with SQLAlchemy 2 but then crashes in its schema upgrade check, which
passes plain SQL strings to `Connection.execute` and indexes rows by column name: both were
removed in SQLAlchemy 2.0. SQLAlchemy 1.4 has no wheels for Python 3.13, so downgrading is
not an option for the worker image. This launcher replaces only that upgrade function with
an equivalent written for SQLAlchemy 2, then starts the normal `luigid`; every option and
config setting of `luigid` works unchanged.
"""

from __future__ import annotations

import logging
import sys

import sqlalchemy

log = logging.getLogger(__name__)


def _upgrade_schema(engine: sqlalchemy.engine.Engine) -> None:
    """Same migrations as luigi.db_task_history._upgrade_schema, SQLAlchemy 2 style."""
    inspector = sqlalchemy.inspect(engine)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        if "task_id" not in [column["name"] for column in inspector.get_columns("tasks")]:
            log.warning("Upgrading DbTaskHistory schema: Adding tasks.task_id")
            conn.exec_driver_sql("ALTER TABLE tasks ADD COLUMN task_id VARCHAR(200)")
            conn.exec_driver_sql("CREATE INDEX ix_task_id ON tasks (task_id)")
        if "mysql" in dialect:
            conn.exec_driver_sql("ALTER TABLE task_parameters MODIFY COLUMN value TEXT")
        elif "oracle" in dialect:
            conn.exec_driver_sql("ALTER TABLE task_parameters MODIFY value TEXT")
        elif "mssql" in dialect:
            conn.exec_driver_sql("ALTER TABLE task_parameters ALTER COLUMN value TEXT")
        elif "postgresql" in dialect:
            value_type = next(
                str(c["type"])
                for c in inspector.get_columns("task_parameters")
                if c["name"] == "value"
            )
            if value_type != "TEXT":
                conn.exec_driver_sql("ALTER TABLE task_parameters ALTER COLUMN value TYPE TEXT")
        elif "sqlite" in dialect:
            rows = conn.exec_driver_sql("PRAGMA table_info(task_parameters)").mappings()
            for row in rows:
                if row["name"] == "value" and row["type"] != "TEXT":
                    log.warning("SQLite cannot change column types; use a new history database")


def patch_task_history() -> None:
    from luigi import db_task_history  # noqa: PLC0415  (only the scheduler needs it)

    db_task_history._upgrade_schema = _upgrade_schema


def main(argv: list[str] | None = None) -> None:
    from luigi.cmdline import luigid  # noqa: PLC0415

    patch_task_history()
    luigid(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
