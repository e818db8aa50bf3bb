"""JupyterHub, checked from the laptop through an SSH forward the way a team member uses it:
PAM logins for the team only, a server that runs the scoring package on the master's Dask
cluster, and logins that survive a restart of the hub."""

from __future__ import annotations

import json
import re

from testlib.molecule import HUB_PORT, PASSWORDS, PROJECT, hub_client, login, wait_for_hub
from testlib.playbooks import run_playbook

PROJECT_NAME = "is24de"
STATE_DIR = "/var/lib/jupyterhub"
COOKIE_SECRET = f"{STATE_DIR}/jupyterhub_cookie_secret"
NOTEBOOKS_DIR = f"/srv/{PROJECT_NAME}/notebooks"
USER_ENV = "/opt/scoring-env"
DIST_DIR = "/opt/jupyterhub/dist"
OLD_STAMP = "scoring-0000000000000000.installed"


def test_hub_runs_the_pinned_release_on_loopback_only(master, laptop, hub):
    assert master.service("jupyterhub").is_running
    assert master.service("jupyterhub").is_enabled
    assert master.socket(f"tcp://127.0.0.1:{HUB_PORT}").is_listening
    assert not master.socket(f"tcp://0.0.0.0:{HUB_PORT}").is_listening
    assert laptop.run(f"curl -s --max-time 5 http://master:{HUB_PORT}/hub/api").rc != 0
    pinned = re.search(
        r"^jupyterhub==(\S+)$",
        (PROJECT / "roles/jupyterhub/files/requirements-hub.txt").read_text(),
        re.MULTILINE,
    )
    answer = json.loads(wait_for_hub(laptop).stdout)
    assert answer["version"] == pinned.group(1)


def test_state_and_cookie_secret_are_private(master):
    state = master.file(STATE_DIR)
    assert (state.user, state.mode) == ("root", 0o700)
    secret = master.file(COOKIE_SECRET)
    assert (secret.user, secret.group, secret.mode) == ("root", "root", 0o600)
    assert len(secret.content_string.strip()) == 64
    assert master.file(f"{STATE_DIR}/jupyterhub.sqlite").exists


def test_member_without_a_password_cannot_log_in(laptop, hub, passwords):
    passwords("bob", None)
    for guess in ("", "bob", "bob-pass", "password"):
        attempt = login(laptop, "bob", guess)
        assert attempt.rc == 1, f"{guess!r}: {attempt.stdout}{attempt.stderr}"


def test_member_logs_in_after_setting_a_password(laptop, hub, passwords):
    passwords("alice", "Quiet-harbor-71")
    attempt = login(laptop, "alice", "Quiet-harbor-71")
    assert attempt.rc == 0, attempt.stdout + attempt.stderr
    assert re.search(r"login status 302 location \S*/hub/", attempt.stdout), attempt.stdout


def test_wrong_password_is_refused(laptop, hub, passwords):
    passwords("alice", "Quiet-harbor-71")
    attempt = login(laptop, "alice", "Quiet-harbor-72")
    assert attempt.rc == 1, attempt.stdout + attempt.stderr
    assert "login status 403" in attempt.stdout


def test_account_outside_the_team_is_refused(master, laptop, hub):
    assert "team" not in master.user("mallory").groups
    shadow = master.check_output("getent shadow mallory | cut -d: -f2")
    assert shadow.startswith("$"), "mallory needs a working password for this check to matter"
    attempt = login(laptop, "mallory", "mallory-pass")
    assert attempt.rc == 1, attempt.stdout + attempt.stderr
    assert "login status 403" in attempt.stdout


def test_admin_group_decides_who_is_hub_admin(laptop, hub, passwords):
    for user, admin in (("bob", True), ("alice", False)):
        passwords(user, PASSWORDS[user])
        cookies = f"/root/{user}.hub-cookies"
        assert login(laptop, user, PASSWORDS[user], "--save-cookies", cookies).rc == 0
        me = hub_client(laptop, "whoami", "--cookies", cookies)
        assert me.rc == 0, me.stdout + me.stderr
        assert json.loads(me.stdout.splitlines()[-1]) == {"name": user, "admin": admin}


def _locked_versions() -> dict[str, str]:
    lock = (PROJECT / "app/requirements.lock").read_text()
    return dict(re.findall(r"^(dask|distributed)==(\S+)$", lock, re.MULTILINE))


NOTEBOOK_CODE = """
import getpass, grp, os, pathlib
import dask, distributed, scoring
from scoring.compute import get_client
from scoring.settings import get_settings
settings = get_settings()
client = get_client(settings)
print("user", getpass.getuser())
print("cwd", os.getcwd())
print("package", scoring.__file__)
print("versions", dask.__version__, distributed.__version__)
print("address", settings.dask_address)
print("data_root", settings.data_root)
print("sum", client.submit(sum, [1, 2, 3]).result(timeout=60))
shared = pathlib.Path.home() / "shared-notebooks" / "from-alice.txt"
shared.write_text("hello team")
print("shared", oct(shared.stat().st_mode & 0o777), grp.getgrgid(shared.stat().st_gid).gr_name)
"""


def test_notebook_runs_scoring_on_the_dask_cluster(master, laptop, hub, passwords):
    passwords("alice", "Quiet-harbor-71")
    run = hub_client(laptop, "run", "alice", "Quiet-harbor-71", NOTEBOOK_CODE, "--stop")
    master.run(f"rm -f {NOTEBOOKS_DIR}/from-alice.txt")
    assert run.rc == 0, run.stdout + run.stderr
    printed = dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)
    assert printed["user"] == "alice"
    assert printed["cwd"] == "/home/alice"
    assert printed["package"].startswith("/opt/scoring-env/")
    locked = _locked_versions()
    assert printed["versions"] == f"{locked['dask']} {locked['distributed']}"
    assert printed["address"] == "tcp://127.0.0.1:8786"
    assert printed["data_root"] == f"/srv/{PROJECT_NAME}"
    assert printed["sum"] == "6"
    assert printed["shared"] == "0o664 team"


def test_a_scoring_install_that_did_not_finish_is_finished_by_the_next_run(master):
    """A run copied a rebuilt wheel to the host and stopped before installing it: the
    environment holds another build of the same version, which pip alone would keep."""
    package = master.check_output(f"ls -d {USER_ENV}/lib/python3*/site-packages/scoring")
    wheel = master.check_output(f"ls {DIST_DIR}/*scoring-*.whl")
    read = f"import zipfile; print(zipfile.ZipFile('{wheel}').read('scoring/__init__.py').decode())"
    from_wheel = master.check_output(f'{USER_ENV}/bin/python -c "{read}"')
    master.check_output(
        f"echo '# another build' >> {package}/__init__.py"
        f" && for stamp in {USER_ENV}/lib/scoring-*.installed;"
        f' do if [ -e "$stamp" ]; then mv "$stamp" {USER_ENV}/lib/{OLD_STAMP}; fi; done'
    )
    run = run_playbook("playbooks/jupyterhub.yml", tags="jupyterhub_notebook_env")
    assert run.returncode == 0, run.stdout + run.stderr
    assert master.file(f"{package}/__init__.py").content_string.strip() == from_wheel.strip()
    listed = master.check_output(f"ls {USER_ENV}/lib").split()
    stamps = [name for name in listed if name.endswith(".installed")]
    assert len(stamps) == 1
    assert stamps != [OLD_STAMP]


def test_shared_notebooks_directory_is_the_teams(master):
    shared = master.file(NOTEBOOKS_DIR)
    assert (shared.user, shared.group, shared.mode) == ("root", "team", 0o3775)
    link = master.file("/home/alice/shared-notebooks")
    assert link.is_symlink
    assert link.linked_to == NOTEBOOKS_DIR


def test_idle_culler_runs_as_a_hub_service(master):
    assert master.run("pgrep -f 'python3? -m jupyterhub_idle_culler'").rc == 0
    config = master.file("/etc/jupyterhub/jupyterhub_config.py").content_string
    for scope in ("list:users", "read:users:activity", "read:servers", "delete:servers"):
        assert f'"{scope}"' in config


def test_restart_keeps_logins_and_the_cookie_secret(master, laptop, hub, passwords):
    passwords("alice", "Quiet-harbor-71")
    cookies = "/root/alice.restart-cookies"
    assert login(laptop, "alice", "Quiet-harbor-71", "--save-cookies", cookies).rc == 0
    secret_before = master.check_output(f"sha256sum {COOKIE_SECRET}")
    master.check_output("systemctl restart jupyterhub.service")
    ready = wait_for_hub(laptop)
    assert ready.rc == 0, f"the hub did not come back: {ready.stderr}"
    assert master.check_output(f"sha256sum {COOKIE_SECRET}") == secret_before
    me = hub_client(laptop, "whoami", "--cookies", cookies)
    assert me.rc == 0, me.stdout + me.stderr
    assert json.loads(me.stdout.splitlines()[-1])["name"] == "alice"
