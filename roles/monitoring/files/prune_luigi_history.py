"""Delete luigid's task history older than N days (run inside the luigid container).

    docker exec -i <luigid container> python3 - DAYS [DATABASE] < prune_luigi_history.py

A task goes when its last event is older than the cutoff; its events and parameters go
with it. Tasks with no event at all are left alone.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from pathlib import Path

days = int(sys.argv[1])
database = Path(sys.argv[2] if len(sys.argv) > 2 else "/var/lib/luigi/task-history.db")
if days <= 0 or not database.exists():
    print(f"nothing to prune ({database}, {days} days)")
    sys.exit(0)
cutoff = (dt.datetime.now() - dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")
with sqlite3.connect(database, timeout=60) as connection:
    connection.execute(
        "CREATE TEMP TABLE old AS SELECT task_id AS id FROM task_events"
        " GROUP BY task_id HAVING MAX(ts) < ?",
        (cutoff,),
    )
    for table, column in (
        ("task_parameters", "task_id"),
        ("task_events", "task_id"),
        ("tasks", "id"),
    ):
        connection.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT id FROM old)")
    removed = connection.execute("SELECT COUNT(*) FROM old").fetchone()[0]
print(f"removed {removed} tasks whose last event is older than {cutoff}")
