"""Every raw day is checked before anything is built from it: each failed check names the
day and the check, writes nothing and fails the run; the policy decides what comes next."""

import datetime as dt
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scoring import cli, fingerprints, naming
from scoring.data import checks, gaps
from scoring.errors import RawDataError, RawDayError
from scoring.features import build
from scoring.settings import get_settings

DAY = dt.date(2026, 1, 27)
DATE = DAY + dt.timedelta(days=1)  # its cutoff is DAY


def _rewrite(path, transform):
    pq.write_table(transform(pq.read_table(path)), path)


def _extra_events(table, user_ids):
    start = dt.datetime.combine(DAY, dt.time(10))
    extra = pa.table(
        {
            "user_id": pa.array(user_ids, pa.int64()),
            "timestamp": pa.array([start] * len(user_ids), pa.timestamp("us")),
            "event_type": pa.array(["search"] * len(user_ids)).dictionary_encode(),
        }
    )
    return pa.concat_tables([table, extra.cast(table.schema)])


def _missing(settings):
    naming.raw_events_path(settings, DAY).unlink()


def _truncated(settings):
    _rewrite(naming.raw_events_path(settings, DAY), lambda t: t.slice(0, t.num_rows // 10))


def _duplicated(settings):
    _rewrite(naming.raw_events_path(settings, DAY), lambda t: pa.concat_tables([t, t.slice(0, 3)]))


def _unknown_user(settings):
    _rewrite(naming.raw_events_path(settings, DAY), lambda t: _extra_events(t, [987_654]))


def _impossible_user_id(settings):
    _rewrite(naming.raw_events_path(settings, DAY), lambda t: _extra_events(t, [-4]))


def _before_signup(settings):
    users = pq.read_table(naming.raw_users_path(settings, DAY))
    user = users["user_id"][0].as_py()
    signup = users["signup_date"].to_pylist()
    signup[0] = DAY + dt.timedelta(days=3)
    pq.write_table(
        users.set_column(1, "signup_date", pa.array(signup, pa.date32())),
        naming.raw_users_path(settings, DAY),
    )
    _rewrite(naming.raw_events_path(settings, DAY), lambda t: _extra_events(t, [user]))


CASES = [
    (_missing, "missing"),
    (_truncated, "volume"),
    (_duplicated, "duplicates"),
    (_unknown_user, "unknown_users"),
    (_impossible_user_id, "impossible_values"),
    (_before_signup, "impossible_values"),
]


@pytest.mark.parametrize(("damage", "check"), CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_day_fails_the_run_with_its_check_and_writes_nothing(data_root, capsys, damage, check):
    settings = get_settings()
    damage(settings)
    code = cli.main(["predict", "--local-scheduler", "--date", DATE.isoformat()])
    err = capsys.readouterr().err
    assert code != 0
    assert f"raw day {DAY} failed the '{check}' check" in err, err
    assert "Traceback" not in err
    assert not naming.daily_partial_path(settings, DAY).exists()
    assert not list(settings.test_dir.glob(f"{DATE}-*"))
    assert not list(settings.window_state_dir.glob(f"{DATE}-*"))
    assert not list(settings.predictions_dir.glob(f"*-{DATE}.parquet"))
    assert not [p for p in data_root.rglob("*") if ".tmp-" in p.name]


def test_a_day_not_yet_delivered_is_late(data_root, capsys):
    settings = get_settings()
    last = max(p.stem for p in settings.raw_events_dir.glob("*.parquet"))
    naming.raw_events_path(settings, dt.date.fromisoformat(last)).unlink()
    code = cli.main(["predict", "--local-scheduler", "--date", settings.today.isoformat()])
    assert code != 0
    assert f"raw day {last} failed the 'late' check" in capsys.readouterr().err


def test_a_normal_day_passes_every_check(data_root):
    settings = get_settings()
    build.ensure_daily_partials(settings, [DAY], progress=False)
    assert fingerprints.recorded_fingerprint(naming.daily_partial_path(settings, DAY)) == (
        fingerprints.fingerprint(naming.raw_events_path(settings, DAY))
    )


def test_skip_policy_records_the_gap_and_goes_on(data_root, monkeypatch):
    monkeypatch.setenv("SCORING_RAW_DAY_POLICY", "skip")
    settings = get_settings()
    _truncated(settings)
    assert cli.main(["predict", "--local-scheduler", "--date", DATE.isoformat()]) == 0
    assert [(g["day"], g["check"]) for g in gaps.recorded_gaps(settings)] == [
        (DAY.isoformat(), "volume")
    ]
    # The skipped day counts as a day without activity.
    assert build.read_partial(settings, DAY).num_rows == 0
    # Scores built without the day say so in their name.
    assert list(settings.predictions_dir.glob(f"*-{DATE}-skip*.parquet"))
    assert not list(settings.predictions_dir.glob(f"*-{DATE}.parquet"))


def test_wait_policy_picks_up_a_day_that_arrives(data_root, monkeypatch):
    monkeypatch.setenv("SCORING_RAW_DAY_POLICY", "wait")
    monkeypatch.setenv("SCORING_RAW_WAIT_SECONDS", "30")
    settings = get_settings()
    path = naming.raw_events_path(settings, DAY)
    delivery = path.read_bytes()
    path.unlink()
    polls = []

    def deliver_while_waiting(seconds):
        polls.append(seconds)
        path.write_bytes(delivery)

    assert checks.wait_for_arrival(settings, DAY, sleep=deliver_while_waiting)
    assert len(polls) == 1


def test_wait_policy_fails_once_the_time_is_up(data_root, monkeypatch):
    monkeypatch.setenv("SCORING_RAW_DAY_POLICY", "wait")
    monkeypatch.setenv("SCORING_RAW_WAIT_SECONDS", "0.2")
    monkeypatch.setenv("SCORING_RAW_POLL_SECONDS", "0.05")
    settings = get_settings()
    naming.raw_events_path(settings, DAY).unlink()
    with pytest.raises(RawDayError, match="'missing' check"):
        checks.wait_for_arrival(settings, DAY)


def test_fail_policy_does_not_wait(data_root):
    settings = get_settings()
    naming.raw_events_path(settings, DAY).unlink()
    with pytest.raises(RawDayError):
        checks.wait_for_arrival(settings, DAY, sleep=lambda _: pytest.fail("waited"))


def test_raw_file_changed_after_processing_is_detected(data_root, capsys):
    settings = get_settings()
    yesterday = settings.today - dt.timedelta(days=1)
    assert (
        cli.main(
            ["daily", "--local-scheduler", "--until", yesterday.isoformat(), "--days-back", "0"]
        )
        == 0
    )
    partial = naming.daily_partial_path(settings, DAY)
    built = partial.stat().st_mtime_ns
    users = pq.read_table(naming.raw_users_path(settings, DAY))["user_id"].to_numpy()
    _rewrite(naming.raw_events_path(settings, DAY), lambda t: _extra_events(t, users[:2]))
    code = cli.main(["daily", "--local-scheduler", "--days-back", "0"])
    err = capsys.readouterr().err
    assert code != 0
    assert f"raw day {DAY} failed the 'changed' check" in err, err
    assert partial.stat().st_mtime_ns == built  # old content is not silently replaced
    assert not list(settings.predictions_dir.glob(f"*-{settings.today}.parquet"))


def test_raw_file_rewritten_with_its_old_mtime_restored_is_detected(data_root):
    """Same size, same inode, the old mtime put back: only the ctime and the bytes differ."""
    settings = get_settings()
    build.ensure_daily_partials(settings, [DAY], progress=False)
    raw = naming.raw_events_path(settings, DAY)
    before = raw.stat()
    data = bytearray(raw.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with raw.open("r+b") as handle:
        handle.write(data)
    os.utime(raw, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (raw.stat().st_size, raw.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    with pytest.raises(RawDayError, match=f"raw day {DAY} failed the 'changed' check"):
        build.ensure_daily_partials(settings, [DAY], progress=False)


def test_schema_errors_are_still_raw_data_errors(data_root):
    settings = get_settings()
    naming.raw_events_path(settings, DAY).write_bytes(b"not parquet")
    with pytest.raises(RawDataError, match="cannot be read as parquet"):
        build.ensure_daily_partials(settings, [DAY], progress=False)


def _predict_date():
    return cli.main(["predict", "--local-scheduler", "--date", DATE.isoformat()])


def _clean_features(settings):
    from scoring.features.spec import load_spec  # noqa: PLC0415

    return build.build_features(settings, load_spec(settings), DATE, "raw", progress=False)


def test_skip_then_fail_checks_the_day_again(data_root, monkeypatch, capsys):
    raw = naming.raw_events_path(get_settings(), DAY)
    delivery = raw.read_bytes()
    monkeypatch.setenv("SCORING_RAW_DAY_POLICY", "skip")
    settings = get_settings()
    _truncated(settings)
    assert _predict_date() == 0
    (skipped_test_set,) = settings.test_dir.glob(f"{DATE}-*")
    assert "-skip" in skipped_test_set.name
    capsys.readouterr()

    # Back to fail: the skipped day is no gap any more; it is checked again and fails.
    monkeypatch.setenv("SCORING_RAW_DAY_POLICY", "fail")
    settings = get_settings()
    assert naming.test_set_path(settings, DATE, skipped_test_set.stem.split("-")[3]).name != (
        skipped_test_set.name
    )
    assert _predict_date() != 0
    assert f"raw day {DAY} failed the 'volume' check" in capsys.readouterr().err

    # Delivered again in full: the day is built, and so is everything downstream, under
    # the names of a clean build.
    raw.write_bytes(delivery)
    assert _predict_date() == 0
    assert pq.read_table(naming.daily_partial_path(settings, DAY)).num_rows > 0
    clean = [p for p in settings.test_dir.glob(f"{DATE}-*") if "-skip" not in p.name]
    assert len(clean) == 1
    assert pq.read_table(clean[0]).equals(_clean_features(settings))
    assert [p for p in settings.predictions_dir.glob(f"*-{DATE}.parquet")]


def test_a_day_that_arrives_after_a_skip_is_used_by_the_next_run(data_root, monkeypatch, capsys):
    monkeypatch.setenv("SCORING_RAW_DAY_POLICY", "skip")
    settings = get_settings()
    raw = naming.raw_events_path(settings, DAY)
    delivery = raw.read_bytes()
    raw.unlink()
    assert _predict_date() == 0
    assert [(g["day"], g["check"]) for g in gaps.recorded_gaps(settings)] == [
        (DAY.isoformat(), "missing")
    ]
    capsys.readouterr()

    raw.write_bytes(delivery)  # the late delivery
    assert _predict_date() == 0, capsys.readouterr().err
    assert gaps.recorded_gaps(settings) == []
    assert fingerprints.recorded_fingerprint(naming.daily_partial_path(settings, DAY)) == (
        fingerprints.fingerprint(raw)
    )
    (test_set,) = [p for p in settings.test_dir.glob(f"{DATE}-*") if "-skip" not in p.name]
    assert pq.read_table(test_set).equals(_clean_features(settings))
    assert list(settings.predictions_dir.glob(f"*-{DATE}.parquet"))
