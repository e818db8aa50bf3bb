"""Backups, proven by a restore: a snapshot on the backup host over sftp holds every listed
path, the next one adds only what changed, failures name their cause and show in systemd,
and a disaster rehearsal (data, a member's home, luigid's state and the hub's database wiped)
brings everything back through playbooks/restore.yml.

The tests build on each other in file order; the module leaves the master as it found it
(services healthy, timers running, no failed unit) for the test modules that follow."""

from __future__ import annotations

import base64
import json
import shlex

import pytest
import testinfra
from testlib import molecule as helpers
from testlib.molecule import all_healthy, luigid_tasks, stack_containers, wait_for
from testlib.playbooks import run_playbook

PROJECT = "is24de"
UNIT = f"backup-{PROJECT}"
DAILY = f"scoring-daily-{PROJECT}"
COMMAND = f"backup-{PROJECT}"
STATUS = f"/var/lib/backup/{PROJECT}/status.json"
PASSWORD_FILE = f"/etc/backup/{PROJECT}/password"
REPOSITORY = f"/srv/restic/{PROJECT}"
DATA = f"/srv/{PROJECT}"
HOME = "/home/alice"
CAPTURE = f"/var/lib/backup/{PROJECT}/capture"
HUB_STATE = "/var/lib/jupyterhub"
INCREMENT = f"{DATA}/reports/backup-increment.bin"
INCREMENT_BYTES = 2 * 1024 * 1024
MEMBER_PASSWORD = "Copper-lantern-52"
# The hub, forwarded to the laptop with bob's key: alice's home (and keys) get wiped.
LOCAL_PORT = 18010
HUB = f"http://127.0.0.1:{LOCAL_PORT}"
TUNNEL_SOCKET = "/root/.backup-hub-tunnel.sock"
COOKIES = "/root/alice.backup-cookies"
# What the checksums compare: every file of the data root, alice's home (without the caches
# the backup leaves out), luigid's state, the hub's secret and the release record.
CHECKSUMMED = f"{DATA} {HOME} /etc/scoring {HUB_STATE}/jupyterhub_cookie_secret"
# The role's backup_exclude defaults (regenerable caches), as find -path patterns.
NOT_BACKED_UP = (
    "*/.cache/*",
    "*/.npm/*",
    "*/.local/share/Trash/*",
    "*/__pycache__/*",
    "*/.ipynb_checkpoints/*",
    "*/data/interim/daily/raw-fingerprints.json",
)


@pytest.fixture(scope="module")
def backup_host() -> testinfra.host.Host:
    """The repository's host runs no Python: reached through `docker exec`."""
    return testinfra.get_host("docker://backup")


def run_unit(master, unit: str = UNIT):
    return helpers.run_unit(master, unit)


def status(master) -> dict:
    return json.loads(master.file(STATUS).content_string)


def snapshot_listing(master) -> set[str]:
    listing = master.check_output(f"{COMMAND} restic ls latest")
    return {line for line in listing.splitlines() if line.startswith("/")}


def repository_state(backup_host) -> str:
    return backup_host.check_output(
        f"find {REPOSITORY} -type f -print0 | sort -z | xargs -0 sha256sum"
    )


def checksums(master) -> dict[str, str]:
    excluded = " ".join(f"-not -path {shlex.quote(p)}" for p in NOT_BACKED_UP)
    listing = master.check_output(
        f"find {CHECKSUMMED} {luigid_dir(master)} -type f {excluded} -print0 | xargs -0r sha256sum"
    )
    return {line.split(maxsplit=1)[1]: line.split()[0] for line in listing.splitlines()}


def luigid_dir(master) -> str:
    return master.check_output(
        f"docker volume inspect --format '{{{{ .Mountpoint }}}}' {PROJECT}_luigi-state"
    )


def outputs(master) -> dict[str, str]:
    """Every computed output and its modification time (outputs are replaced, never edited)."""
    listing = master.check_output(
        f"find {DATA}/models {DATA}/data/processed -type f -printf '%p %T@\\n'"
    )
    return dict(line.rsplit(" ", 1) for line in listing.splitlines())


def hub_client(laptop, *args: str):
    return helpers.hub_client(laptop, *args, within_seconds=300, hub=HUB)


def hub_answers(laptop):
    return helpers.wait_for_hub(laptop, hub=HUB)


def whoami(laptop) -> str | None:
    me = hub_client(laptop, "whoami", "--cookies", COOKIES)
    return json.loads(me.stdout.splitlines()[-1])["name"] if me.rc == 0 else None


@pytest.fixture(scope="module")
def pipeline_ran(master):
    """The daily pipeline has run on this master (it is run here if it has not yet)."""
    predictions = master.run(f"ls {DATA}/models/predictions").stdout.split()
    if not any(name.endswith(".parquet") for name in predictions):
        helpers.generate_recent_data(master)
        run, journal = run_unit(master, DAILY)
        assert run.rc == 0, journal
    predictions = master.check_output(f"ls {DATA}/models/predictions").split()
    assert any(name.endswith(".parquet") for name in predictions), predictions
    return predictions


@pytest.fixture(scope="module")
def member(master, laptop, pipeline_ran):
    """alice with a hub password, a saved login cookie, a notebook and a cache in her home."""
    helpers.open_hub_forward(laptop, "bob", LOCAL_PORT, TUNNEL_SOCKET)
    assert hub_answers(laptop).rc == 0
    saved_hash = master.check_output("getent shadow alice | cut -d: -f2")
    master.check_output(f"echo {shlex.quote(f'alice:{MEMBER_PASSWORD}')} | chpasswd")
    master.check_output(
        f"install -o alice -g alice -m 0644 /dev/null {HOME}/rehearsal.ipynb"
        f" && echo '{{\"cells\": []}}' > {HOME}/rehearsal.ipynb"
        f" && install -d -o alice -g alice {HOME}/.cache/rehearsal"
        f" && echo regenerable > {HOME}/.cache/rehearsal/junk"
    )
    login = hub_client(laptop, "login", "alice", MEMBER_PASSWORD, "--save-cookies", COOKIES)
    assert login.rc == 0, login.stdout + login.stderr
    assert whoami(laptop) == "alice"
    yield
    master.run(f"usermod -p {shlex.quote(saved_hash)} alice")
    master.run(f"rm -f {HOME}/rehearsal.ipynb {INCREMENT} {DATA}/reports/newer-than-snapshot.txt")
    master.run(f"rm -rf {HOME}/.cache/rehearsal; systemctl reset-failed {UNIT}.service")
    helpers.close_forwards(laptop, "bob", TUNNEL_SOCKET)
    laptop.run(f"rm -f {COOKIES}")


def test_timer_has_a_random_delay_and_catches_up_after_downtime(master):
    timer = master.check_output(
        f"systemctl show --property Persistent,RandomizedDelayUSec,UnitFileState,ActiveState "
        f"{UNIT}.timer"
    )
    assert "Persistent=yes" in timer, timer
    assert "RandomizedDelayUSec=1h" in timer, timer
    assert "UnitFileState=enabled" in timer, timer
    assert "ActiveState=active" in timer, timer
    assert master.service(f"backup-check-{PROJECT}.timer").is_running


def test_secrets_are_root_only(master):
    for path in (PASSWORD_FILE, f"/etc/backup/{PROJECT}/ssh/id_ed25519"):
        secret = master.file(path)
        assert (secret.user, secret.mode) == ("root", 0o600), path
    assert master.file(f"/etc/backup/{PROJECT}").mode == 0o700


def test_backup_holds_every_listed_path(master, backup_host, member, pipeline_ran):
    run, journal = run_unit(master)
    assert run.rc == 0, journal
    recorded = status(master)
    assert recorded["snapshot_id"], recorded
    assert recorded["last_error"] is None, recorded
    assert recorded["bytes_added"] > 0, recorded
    assert "saved:" in journal, journal
    assert master.file(STATUS).mode == 0o644, "the status file is for everyone to read"
    assert backup_host.file(f"{REPOSITORY}/config").exists, "no repository on the backup host"

    listed = snapshot_listing(master)
    prediction = next(name for name in pipeline_ran if name.endswith(".parquet"))
    for path in (
        f"{DATA}/models/predictions/{prediction}",
        f"{DATA}/notebooks",
        f"{HOME}/rehearsal.ipynb",
        f"{HOME}/.ssh/authorized_keys",
        f"/etc/scoring/{PROJECT}/release.json",
        "/etc/ssh/ssh_host_ed25519_key",
        f"{HUB_STATE}/jupyterhub_cookie_secret",
        f"{CAPTURE}/luigid/state.pickle",
        f"{CAPTURE}/luigid/task-history.db",
        f"{CAPTURE}/jupyterhub/jupyterhub.sqlite",
    ):
        assert path in listed, f"{path} is not in the snapshot"
    assert f"{HOME}/.cache/rehearsal/junk" not in listed, "a cache was backed up"
    # The short stop of luigid for its state left it serving.
    wait_for(lambda: all_healthy(master), 120, "every service healthy after the backup")


def test_second_backup_adds_only_what_changed(master):
    first = status(master)
    master.check_output(
        f"head -c {INCREMENT_BYTES} /dev/urandom > {INCREMENT} && chgrp team {INCREMENT}"
    )
    run, journal = run_unit(master)
    assert run.rc == 0, journal
    second = status(master)
    assert second["snapshot_id"] != first["snapshot_id"]
    # The new file, plus the state copies that changed and the metadata: about 2 MiB.
    assert INCREMENT_BYTES <= second["bytes_added"] <= INCREMENT_BYTES + 1024 * 1024, second
    assert second["files_new"] >= 1, second
    assert "MiB added" in journal, journal
    assert INCREMENT in snapshot_listing(master)


@pytest.fixture
def failed_backup_cleanup(master):
    yield
    master.run(f"systemctl reset-failed {UNIT}.service")


def test_wrong_password_fails_naming_it_and_leaves_the_repository(
    master, backup_host, failed_backup_cleanup
):
    before, repository = status(master), repository_state(backup_host)
    saved = master.check_output(f"base64 -w0 {PASSWORD_FILE}")
    master.check_output(f"printf %s not-the-password > {PASSWORD_FILE}")
    try:
        run, journal = run_unit(master)
    finally:
        master.check_output(f"echo {saved} | base64 -d > {PASSWORD_FILE}")
    assert run.rc != 0, journal
    assert "the repository password is wrong" in journal, journal
    assert f"{UNIT}.service" in master.check_output("systemctl --failed --plain --no-legend")
    after = status(master)
    assert after["last_error_kind"] == "wrong-password", after
    assert (after["snapshot_id"], after["last_success"]) == (
        before["snapshot_id"],
        before["last_success"],
    )
    assert repository_state(backup_host) == repository
    assert base64.b64encode(master.file(PASSWORD_FILE).content).decode() == saved


def test_unreachable_repository_fails_naming_it_and_leaves_the_repository(
    master, backup_host, failed_backup_cleanup
):
    before, repository = status(master), repository_state(backup_host)
    hosts = master.check_output("base64 -w0 /etc/hosts")
    # A documentation address (TEST-NET-1): nothing answers there.
    master.check_output("echo '192.0.2.1 backup' >> /etc/hosts")
    try:
        run, journal = run_unit(master)
    finally:
        master.check_output(f"echo {hosts} | base64 -d > /etc/hosts")
    assert run.rc != 0, journal
    assert "cannot be reached" in journal, journal
    assert f"{UNIT}.service" in master.check_output("systemctl --failed --plain --no-legend")
    after = status(master)
    assert after["last_error_kind"] == "unreachable", after
    assert after["snapshot_id"] == before["snapshot_id"]
    assert repository_state(backup_host) == repository


@pytest.fixture(scope="module")
def rehearsal(master, laptop, member):
    """What the master held at the last snapshot, then the loss, then restore.yml."""
    wait_for(lambda: all_healthy(master), 120, "every service healthy before the rehearsal")
    before = {
        "files": checksums(master),
        "done": luigid_tasks(master, "DONE"),
        "outputs": outputs(master),
    }
    assert before["done"], "luigid knows no finished task: nothing to prove"
    assert f"{HOME}/rehearsal.ipynb" in before["files"]

    # The loss: the data, alice's home, luigid's state and the hub's database and secret.
    master.check_output(f"find {DATA} -mindepth 1 -delete && rm -rf {HOME}")
    state = luigid_dir(master)
    master.check_output(
        f"docker stop {PROJECT}-luigid-1 && rm -f {state}/* && docker start {PROJECT}-luigid-1"
    )
    master.check_output(
        f"systemctl stop jupyterhub && rm -f {HUB_STATE}/jupyterhub.sqlite "
        f"{HUB_STATE}/jupyterhub_cookie_secret && systemctl start jupyterhub"
    )
    wait_for(lambda: all_healthy(master), 120, "luigid back after the wipe")
    assert hub_answers(laptop).rc == 0
    lost = {"done": luigid_tasks(master, "DONE"), "cookie": whoami(laptop)}

    result = run_playbook("playbooks/restore.yml", timeout=900)
    return {"before": before, "lost": lost, "result": result}


def test_restore_playbook_succeeds(rehearsal):
    result = rehearsal["result"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Restoring snapshot" in result.stdout


def test_wipe_was_real(rehearsal):
    assert rehearsal["lost"] == {"done": set(), "cookie": None}


def test_restored_files_are_byte_identical(master, rehearsal):
    assert checksums(master) == rehearsal["before"]["files"]
    assert master.file(HOME).user == "alice"
    assert master.file(f"{HOME}/rehearsal.ipynb").user == "alice"
    assert not master.file(f"{HOME}/.cache/rehearsal/junk").exists


def test_luigid_shows_the_history_from_before(master, rehearsal):
    assert all_healthy(master)
    assert rehearsal["before"]["done"] <= luigid_tasks(master, "DONE")


def test_member_logs_in_and_the_old_cookie_still_works(laptop, rehearsal):
    assert hub_answers(laptop).rc == 0
    assert whoami(laptop) == "alice"
    login = hub_client(laptop, "login", "alice", MEMBER_PASSWORD)
    assert login.rc == 0, login.stdout + login.stderr


def test_next_daily_run_continues_without_recomputing(master, rehearsal):
    assert master.service(f"{DAILY}.timer").is_running
    assert master.service(f"{UNIT}.timer").is_running
    run, journal = run_unit(master, DAILY)
    assert run.rc == 0, journal
    after = outputs(master)
    unchanged = {path: after.get(path) for path in rehearsal["before"]["outputs"]}
    assert unchanged == rehearsal["before"]["outputs"], "finished days were computed again"


def test_restore_refuses_to_overwrite_newer_data(master):
    # Nothing on the master is newer than the snapshot yet, so the one file below is the cause.
    plan = json.loads(master.check_output(f"{COMMAND} restore-plan"))
    assert plan["newer"] == [], plan
    newer = f"{DATA}/reports/newer-than-snapshot.txt"
    master.check_output(f"echo written after the backup > {newer}")
    hub = master.check_output("systemctl show --property MainPID --value jupyterhub")
    started = {s: c["State"]["StartedAt"] for s, c in stack_containers(master).items()}
    try:
        result = run_playbook("playbooks/restore.yml")
    finally:
        master.run(f"rm -f {newer}")
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert "Refusing to restore snapshot" in output, output
    assert newer in output, output
    assert "-e restore_force=true" in output, output
    assert master.check_output("systemctl show --property MainPID --value jupyterhub") == hub
    assert {s: c["State"]["StartedAt"] for s, c in stack_containers(master).items()} == started


def test_next_backup_succeeds_and_the_master_is_as_before(master):
    """After the failures above, a backup succeeds again: the status file says so."""
    run, journal = run_unit(master)
    assert run.rc == 0, journal
    assert status(master)["last_error"] is None
    wait_for(lambda: all_healthy(master), 120, "every service healthy")
    assert master.service("jupyterhub").is_running
    failed = master.check_output("systemctl --failed --plain --no-legend")
    assert f"{UNIT}.service" not in failed, failed
