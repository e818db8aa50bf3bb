"""A conversions file broken on the master stops the daily run, and the alert names the
file: labels are checked before they are used, as event days are.

The module leaves the master as it found it: the file restored, the live evaluations it
removed written again by a daily run, the unit not failed."""

from __future__ import annotations

from test_alerts import alerts, alerts_since
from test_stage_and_rollback import DAILY, run_daily
from testlib.molecule import generate_recent_data, wait_for

ROOT = "/srv/is24de"
BACKUP = "/root/input-checks-conversions.parquet"
# Dates whose label window may hold yesterday: any lead window up to a week.
LEAD_WINDOWS = 7


def test_an_emptied_conversions_file_fails_the_daily_run_with_an_alert_naming_it(master, laptop):
    generate_recent_data(master)
    # With the data delay of 1, yesterday's conversions complete the labels of the latest
    # labelled date, which the daily run evaluates.
    day = master.check_output("date -d '-1 day' +%F").strip()
    path = f"{ROOT}/data/raw/conversions/{day}.parquet"
    evaluated = [
        master.check_output(f"date -d '{day} -{back} days' +%F").strip()
        for back in range(LEAD_WINDOWS)
    ]
    records = " ".join(f"{ROOT}/reports/live/*-{date}.json" for date in evaluated)
    master.check_output(f"cp -p {path} {BACKUP}")
    try:
        # Those dates' labels are read again by this run, not found done by an earlier one.
        master.check_output(f"rm -f {records}")
        master.check_output(f"truncate -s 0 {path}")
        marker = len(alerts(laptop))
        run, journal = run_daily(master)
        assert run.rc != 0, journal
        assert f"raw conversions of {day} failed" in journal, journal
        assert path in journal, journal

        found = wait_for(
            lambda: alerts_since(laptop, marker, "PROBLEM", DAILY),
            90,
            "an alert about the daily run",
            2,
        )
        assert any(path in text for text in found), found
    finally:
        master.run(f"cp -p {BACKUP} {path} && rm -f {BACKUP}")
        master.run(f"systemctl reset-failed {DAILY}.service")

    # Restored, the file passes its checks and the removed evaluations are written again.
    run, journal = run_daily(master)
    assert run.rc == 0, journal
    written = master.check_output(f"ls {records} 2>/dev/null || true").split()
    assert written, journal
