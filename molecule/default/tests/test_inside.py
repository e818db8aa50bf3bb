"""The master from the inside: alice, a member without admin rights, logged in over SSH
from the laptop, tries to become root, to act as somebody else and to reach what is not
the team's. Every attempt must fail where it is decided: on the master."""

from __future__ import annotations

import re
import shlex

import pytest
from testlib.molecule import PASSWORDS, SSH_OPTIONS, http_get, login, ssh, ssh_forwards, wait_for
from testlib.playbooks import run_playbook

CANARY = "/etc/scoring-canary"
DATA = "/srv/is24de"


def state(master, path: str) -> tuple:
    """Owner, group, mode and content of a system-owned file or directory."""
    entry = master.file(path)
    content = entry.content_string if entry.is_file else sorted(entry.listdir())
    return entry.user, entry.group, entry.mode, entry.is_symlink, content


@pytest.fixture(scope="module")
def canary(master):
    """A root-owned directory and secret: what a member would like root to hand over."""
    master.check_output(
        f"mkdir -p {CANARY} && chmod 0755 {CANARY} && echo secret > {CANARY}/secret "
        f"&& chmod 0600 {CANARY}/secret"
    )
    yield
    master.run(f"rm -rf {CANARY}")


@pytest.fixture(scope="module")
def steered_converge(master, laptop, canary):
    """alice and bob (acting as plain members) lay their traps, then the next run comes."""
    before = {path: state(master, path) for path in (CANARY, f"{CANARY}/secret")}
    attempts = {}
    # ~/.ssh as a link to a root-owned directory: root would chown it and write keys there.
    attempts["bob-ssh-link"] = ssh(laptop, "bob", f"mv ~/.ssh ~/.ssh.mine && ln -s {CANARY} ~/.ssh")
    # Root-owned data directories renamed or deleted, to put a link in their place: root
    # would hand the link's target to the team, group-writable.
    attempts["rename-data-dir"] = ssh(
        laptop, "alice", f"mv {DATA}/models/predictions {DATA}/models/predictions.x"
    )
    attempts["delete-data-dir"] = ssh(laptop, "alice", f"rmdir {DATA}/data/external")
    # The shared-notebooks link replaced by a directory of her own.
    attempts["own-notebooks-dir"] = ssh(
        laptop, "alice", "rm ~/shared-notebooks && mkdir ~/shared-notebooks"
    )
    # A link where a data directory is missing (a member got there first).
    master.check_output(f"rm -rf {DATA}/data/external")
    attempts["link-for-missing-dir"] = ssh(laptop, "alice", f"ln -s {CANARY} {DATA}/data/external")
    # Last, as it ends her logins until the run repairs it: authorized_keys as a link to a
    # root-only file, which root would chown and chmod.
    attempts["alice-keys-link"] = ssh(
        laptop,
        "alice",
        "cp ~/.ssh/authorized_keys ~/keys.mine && rm ~/.ssh/authorized_keys "
        f"&& ln -s {CANARY}/secret ~/.ssh/authorized_keys",
    )
    # A member put into a root-equivalent group by hand.
    master.check_output("gpasswd --add alice adm")
    run = run_playbook("site.yml", tags="users,jupyterhub_notebooks,scoring_stack_directories")
    yield {"before": before, "attempts": attempts, "run": run}
    master.run("rm -rf /home/alice/keys.mine /home/bob/.ssh.moved-* /home/alice/.ssh/*.moved-*")
    master.run("rm -rf /home/alice/shared-notebooks /home/bob/.ssh.mine")
    master.run(f"rm -rf {DATA}/data/external.moved-*")
    # The link comes back with the next run of the notebooks tasks.
    run_playbook("playbooks/jupyterhub.yml", tags="jupyterhub_notebooks")


def test_the_run_after_the_traps_succeeds(steered_converge):
    run = steered_converge["run"]
    assert run.returncode == 0, run.stdout + run.stderr


def test_system_owned_targets_are_unchanged(master, steered_converge):
    for path, before in steered_converge["before"].items():
        assert state(master, path) == before, path


def test_members_cannot_rename_or_delete_what_they_do_not_own(master, steered_converge):
    attempts = steered_converge["attempts"]
    for name in ("rename-data-dir", "delete-data-dir"):
        assert attempts[name].rc != 0, name
        assert "Operation not permitted" in attempts[name].stderr, attempts[name].stderr
    for directory in (f"{DATA}/models/predictions", f"{DATA}/models"):
        entry = master.file(directory)
        assert (entry.user, entry.group, entry.mode, entry.is_symlink) == (
            "root",
            "team",
            0o3775,
            False,
        )


def test_a_link_where_a_data_directory_was_missing_is_moved_aside(master, steered_converge):
    assert steered_converge["attempts"]["link-for-missing-dir"].rc == 0
    external = master.file(f"{DATA}/data/external")
    assert external.is_directory
    assert not external.is_symlink
    assert (external.user, external.mode) == ("root", 0o3775)
    moved = master.check_output(f"find {DATA}/data -maxdepth 1 -name 'external.moved-*' -type l")
    assert moved, "the member's link was not kept aside"


def test_odd_ssh_entries_are_repaired_and_their_owners_log_in(master, laptop, steered_converge):
    for name in ("bob-ssh-link", "alice-keys-link"):
        assert steered_converge["attempts"][name].rc == 0, steered_converge["attempts"][name]
    bob_ssh = master.file("/home/bob/.ssh")
    assert bob_ssh.is_directory and not bob_ssh.is_symlink
    assert (bob_ssh.user, bob_ssh.mode) == ("bob", 0o700)
    keys = master.file("/home/alice/.ssh/authorized_keys")
    assert keys.is_file and not keys.is_symlink
    assert (keys.user, keys.mode) == ("alice", 0o600)
    output = steered_converge["run"].stdout
    assert "~/.ssh of bob was a link" in output, output
    assert "~/.ssh/authorized_keys of alice was a link" in output, output
    for member in ("alice", "bob"):
        assert ssh(laptop, member, "true").rc == 0, f"{member} cannot log in after the repair"


def test_an_own_notebooks_directory_is_left_alone_and_named(master, steered_converge):
    assert steered_converge["attempts"]["own-notebooks-dir"].rc == 0
    own = master.file("/home/alice/shared-notebooks")
    assert own.is_directory and not own.is_symlink and own.user == "alice"
    output = steered_converge["run"].stdout
    assert "/home/alice/shared-notebooks of alice is a directory" in output, output


def test_root_equivalent_groups_follow_the_inventory(master, steered_converge):
    assert "adm" not in master.user("alice").groups


def test_members_cannot_touch_each_others_shared_notebooks(master, laptop):
    notebooks = f"{DATA}/notebooks"
    assert ssh(laptop, "bob", f"echo '{{}}' > {notebooks}/bob-inside.ipynb").rc == 0
    try:
        for attempt in (
            f"mv {notebooks}/bob-inside.ipynb {notebooks}/mine.ipynb",
            f"rm -f {notebooks}/bob-inside.ipynb",
        ):
            result = ssh(laptop, "alice", attempt)
            assert result.rc != 0, attempt
            assert "Operation not permitted" in result.stderr, result.stderr
        assert master.file(f"{notebooks}/bob-inside.ipynb").user == "bob"
    finally:
        master.run(f"rm -f {notebooks}/bob-inside.ipynb {notebooks}/mine.ipynb")


# --- sudo -----------------------------------------------------------------------------


def test_sudo_search_path_holds_only_roots_directories(master):
    rule = master.file("/etc/sudoers.d/10-secure-path").content_string
    path = re.search(r'secure_path="([^"]+)"', rule).group(1)
    for directory in path.split(":"):
        # The directory and every parent: a writable parent could swap the directory.
        real = master.check_output(f"realpath {directory}")
        parts = real.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            entry = master.file("/" + "/".join(parts[:depth]))
            assert entry.user == "root", entry.path
            assert not entry.mode & 0o002, entry.path
            if entry.mode & 0o020:
                members = master.check_output(f"getent group {entry.group} | cut -d: -f4")
                assert not members, f"{entry.path} is writable by {entry.group}: {members}"


def test_scoring_run_ignores_the_callers_environment(master, laptop):
    trap = "mkdir -p /tmp/trap && printf '#!/bin/sh\\ntouch /tmp/trap/ran\\n' > /tmp/trap/docker"
    assert ssh(laptop, "alice", f"{trap} && chmod +x /tmp/trap/docker").rc == 0
    try:
        plain = ssh(laptop, "alice", "PATH=/tmp/trap:$PATH sudo -n scoring-run true")
        assert plain.rc == 0, plain.stderr
        kept = ssh(laptop, "alice", "PATH=/tmp/trap:$PATH sudo -n -E scoring-run true")
        assert kept.rc != 0, "sudo kept a member's environment for scoring-run"
        assert not master.file("/tmp/trap/ran").exists, "scoring-run ran a member's program"
    finally:
        master.run("rm -rf /tmp/trap")


@pytest.fixture
def fresh_password(master):
    """Give alice and bob no password for one test, and their old state back after it."""
    saved = {
        user: master.check_output(f"getent shadow {user} | cut -d: -f2")
        for user in ("alice", "bob")
    }
    for user in saved:
        master.check_output(f"usermod -p '!' {user}")
    yield
    for user, hashed in saved.items():
        master.check_output(f"usermod -p {shlex.quote(hashed)} {user}")


def sudo_passwd(laptop, member: str, target: str, new: str, *before: str):
    answers = "\\n".join([*before, new, new]) + "\\n"
    return ssh(laptop, member, f"printf '{answers}' | sudo -n passwd {target}")


def test_sudo_passwd_sets_a_first_password_of_quality(master, laptop, fresh_password):
    for weak, why in (("Sh0rt-pw", "shorter"), ("alice-Quartz-47", "user name")):
        attempt = sudo_passwd(laptop, "alice", "alice", weak)
        assert attempt.rc != 0, weak
        assert (
            why in (attempt.stdout + attempt.stderr).lower()
            or "bad password" in (attempt.stdout + attempt.stderr).lower()
        ), attempt.stdout + attempt.stderr
        assert master.check_output("getent shadow alice | cut -d: -f2") == "!", weak
    good = sudo_passwd(laptop, "alice", "alice", PASSWORDS["alice"])
    assert good.rc == 0, good.stdout + good.stderr
    assert master.check_output("getent shadow alice | cut -d: -f2").startswith("$")


def test_a_set_password_cannot_be_reset_through_sudo(master, laptop, fresh_password):
    """The rule that sets a first password would otherwise let a stolen admin key set the
    admin's sudo password without knowing it."""
    assert sudo_passwd(laptop, "bob", "bob", PASSWORDS["bob"]).rc == 0
    hashed = master.check_output("getent shadow bob | cut -d: -f2")
    again = sudo_passwd(laptop, "bob", "bob", "Other-harbor-93")
    assert again.rc != 0
    assert "already has a password" in again.stderr, again.stderr
    assert master.check_output("getent shadow bob | cut -d: -f2") == hashed
    # Plain passwd asks for the current one, and a wrong one changes nothing.
    wrong = ssh(
        laptop, "bob", "printf 'Not-the-one-11\\nOther-harbor-93\\nOther-harbor-93\\n' | passwd"
    )
    assert wrong.rc != 0
    assert master.check_output("getent shadow bob | cut -d: -f2") == hashed
    # The admin's sudo still takes the admin's own password.
    sudo = ssh(laptop, "bob", f"echo {PASSWORDS['bob']} | sudo -S -p '' id -u")
    assert sudo.stdout.strip() == "0", sudo.stderr


def test_members_set_only_their_own_password(laptop):
    for command in ("sudo -n passwd bob", "sudo -n /usr/bin/passwd alice", "sudo -n true"):
        attempt = ssh(laptop, "alice", f"printf 'x\\nx\\n' | {command}")
        assert attempt.rc != 0, command
        assert "password is required" in attempt.stderr or "not allowed" in attempt.stderr, (
            attempt.stderr
        )


# --- JupyterHub's PAM service ------------------------------------------------------------


@pytest.mark.parametrize(
    ("account_state", "command"),
    [
        ("never set", "usermod -p '!' alice"),
        ("locked", "passwd --lock alice"),
        ("account expired", "chage --expiredate 1 alice"),
        ("password expired", "passwd --expire alice"),
        ("emptied", "passwd --delete alice"),
    ],
)
@pytest.mark.usefixtures("hub")
def test_hub_refuses_accounts_that_must_not_log_in(
    master, laptop, passwords, account_state, command
):
    passwords("alice", PASSWORDS["alice"])
    try:
        master.check_output(command)
        for guess in (PASSWORDS["alice"], ""):
            attempt = login(laptop, "alice", guess)
            assert attempt.rc == 1, f"{account_state}, {guess!r}: {attempt.stdout}{attempt.stderr}"
    finally:
        master.check_output("chage --expiredate -1 --lastday $(( $(date +%s) / 86400 )) alice")
        master.check_output("faillock --user alice --reset")


@pytest.mark.usefixtures("hub")
def test_repeated_wrong_passwords_throttle_that_name_for_a_while(master, laptop, passwords):
    passwords("alice", PASSWORDS["alice"])
    passwords("bob", PASSWORDS["bob"])
    for number in range(3):
        assert login(laptop, "alice", f"Wrong-guess-{number}0").rc == 1
    locked = login(laptop, "alice", PASSWORDS["alice"])
    assert locked.rc == 1, "the right password got in right after repeated failures"
    assert login(laptop, "bob", PASSWORDS["bob"]).rc == 0, "another name was throttled too"
    # The lockout (15 s here) ends by itself: the right password works again.
    wait_for(
        lambda: login(laptop, "alice", PASSWORDS["alice"]).rc == 0,
        60,
        "alice's login after the lockout",
        interval=3,
    )


# --- Forwarding ----------------------------------------------------------------------------


def forward(laptop, destination: str):
    """A direct-tcpip channel to `destination` through alice's session (what -L opens)."""
    return laptop.run(
        f"timeout 30 ssh {SSH_OPTIONS} -i /root/keys/alice -W {destination} alice@master </dev/null"
    )


def test_a_forward_to_a_team_service_works(laptop):
    # A real -L forward held open while the request runs: with `ssh -W` fed from a pipe,
    # the end of stdin could close the channel before the answer came back.
    forward = "-L 18998:127.0.0.1:8082"
    with ssh_forwards(laptop, "alice", forward, "/root/.inside-forward.sock"):
        answer = http_get(laptop, "http://127.0.0.1:18998/api/task_list?data=%7B%7D")
        assert answer.rc == 0, answer.stderr
        assert '"response"' in answer.stdout, answer.stdout


@pytest.mark.parametrize(
    "destination",
    ["127.0.0.1:22", "localhost:25", "laptop:8080", "169.254.169.254:80", "MASTER:22"],
    ids=["other-port", "other-local-port", "other-host", "cloud-metadata", "master-address"],
)
def test_sshd_refuses_forwards_elsewhere(master, laptop, destination):
    if destination.startswith("MASTER"):
        address = master.check_output(
            "ip -4 -o route get 1.1.1.1 | sed -E 's/.* src ([0-9.]+).*/\\1/'"
        )
        destination = destination.replace("MASTER", address)
    attempt = forward(laptop, destination)
    assert attempt.rc != 0
    # The server's answer to the channel request, not a client-side failure.
    assert "administratively prohibited" in attempt.stderr, attempt.stderr


def test_sshd_refuses_remote_forwards(laptop):
    attempt = laptop.run(
        f"timeout 30 ssh {SSH_OPTIONS} -i /root/keys/alice -o ExitOnForwardFailure=yes "
        "-R 18999:127.0.0.1:22 -N alice@master"
    )
    assert attempt.rc != 0
    assert "remote port forwarding failed" in attempt.stderr, attempt.stderr


# --- Groups and secrets ----------------------------------------------------------------------


def test_docker_group_follows_docker_users(master):
    try:
        granted = run_playbook("playbooks/docker.yml", {"docker_users": ["alice"]})
        assert granted.returncode == 0, granted.stdout + granted.stderr
        assert "docker" in master.user("alice").groups
    finally:
        revoked = run_playbook("playbooks/docker.yml")
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    assert "docker" not in master.user("alice").groups


@pytest.mark.parametrize(
    "secret",
    ["/var/lib/jupyterhub/jupyterhub_cookie_secret", "/var/lib/jupyterhub/jupyterhub.sqlite"],
)
def test_hub_secrets_are_roots_alone(master, laptop, secret):
    entry = master.file(secret)
    assert (entry.user, entry.group, entry.mode) == ("root", "root", 0o600)
    attempt = ssh(laptop, "alice", f"cat {secret}")
    assert attempt.rc != 0
    assert "Permission denied" in attempt.stderr


@pytest.mark.parametrize("service", ["luigid", "dask-scheduler", "dask-worker", "worker"])
def test_containers_drop_privileges(master, service):
    container = f"is24de-{service}-1"
    inspect = master.check_output(
        "docker inspect --format '{{json .HostConfig.SecurityOpt}} {{json .HostConfig.CapDrop}} "
        "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}' " + container
    )
    security, cap_drop, read_only, user = inspect.split(" ", 3)
    assert "no-new-privileges:true" in security, inspect
    assert cap_drop == '["ALL"]', inspect
    assert user and not user.startswith("0"), inspect
    assert read_only == ("false" if service == "dask-worker" else "true"), inspect
