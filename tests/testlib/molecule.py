"""What the Molecule scenarios' checks share: logging in from the laptop the way a team
member does, HTTP through the forwards, the audit tool, waiting for the hosts; and the
tests' one playbook runner, re-exported."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[2]))
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
# What a member's client is allowed to negotiate: the modern algorithms only, so that every
# login of the checks proves they suffice (post-quantum hybrid or curve25519 key exchange,
# an ed25519 host key, AEAD ciphers or encrypt-then-MAC SHA-2 MACs).
MODERN_ALGORITHMS = " ".join(
    (
        "-o KexAlgorithms=mlkem768x25519-sha256,sntrup761x25519-sha512,curve25519-sha256",
        "-o HostKeyAlgorithms=ssh-ed25519",
        "-o Ciphers=chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com",
        "-o MACs=hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
    )
)
SSH_OPTIONS = " ".join(
    (
        "-o BatchMode=yes",
        "-o ConnectTimeout=10",
        "-o StrictHostKeyChecking=no",
        "-o UserKnownHostsFile=/dev/null",
        MODERN_ALGORITHMS,
    )
)
# The audit tool pinned in requirements/controller.lock, from the venv that runs the checks.
SSH_AUDIT = Path(sys.executable).with_name("ssh-audit")
# Its exit codes: 0 nothing to report, 2 warnings only (3 is a failure, 1 no connection).
AUDIT_PASSED = (0, 2)


def ssh(laptop, user: str, command: str, *options: str):
    """Log in from the laptop as `user` with that user's key and run `command` on the master."""
    quoted = command.replace("'", "'\"'\"'")
    return laptop.run(
        f"ssh {SSH_OPTIONS} {' '.join(options)} -i /root/keys/{user} {user}@master '{quoted}'"
    )


def network_address(laptop, name: str) -> str:
    """The IPv4 address Docker gave the test host `name`, as the laptop resolves it."""
    answer = laptop.check_output(f"getent ahostsv4 {name}").split()
    assert answer, f"the laptop does not resolve {name}"
    return answer[0]


def ssh_audit(address: str) -> tuple[int, str]:
    """ssh-audit (the third-party audit) against port 22 of one test host: exit code, report."""
    assert SSH_AUDIT.exists(), f"{SSH_AUDIT} is missing: install requirements/controller.lock"
    audit = subprocess.run(
        [str(SSH_AUDIT), "--no-colors", "--timeout", "20", "--port", "22", address],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=os.environ | {"NO_COLOR": "1"},
    )
    output = audit.stdout + audit.stderr
    return audit.returncode, output


def audit_failures(output: str) -> list[str]:
    """The lines of an ssh-audit report that it marks as failed."""
    return [line for line in output.splitlines() if "[fail]" in line]


def show_audit(capsys, name: str, address: str, output: str) -> None:
    """Print the whole report to the run's output, whatever the result."""
    with capsys.disabled():
        print(f"\n----- ssh-audit of {name} ({address}) -----\n{output.rstrip()}\n-----")


def http_get(host, url: str, within_seconds: int = 20):
    """GET `url` from `host`, retrying refused connections until it answers or time runs out."""
    return host.run(
        f"curl -sSf --retry {within_seconds} --retry-delay 1 --retry-connrefused "
        f"--retry-max-time {within_seconds} --max-time {within_seconds + 5} {url}"
    )


def open_ports(laptop, target: str, *nmap_options: str) -> list[int]:
    """Every TCP port nmap finds open on `target`: a full 1-65535 SYN scan, bounded in time."""
    scan = laptop.run(
        "timeout 600 nmap -Pn -sS -p- -T4 --min-rate 4000 --max-retries 2 --host-timeout 540s "
        f"-oG - {' '.join(nmap_options)} {target}"
    )
    assert scan.rc == 0, scan.stderr
    assert "Status: Up" in scan.stdout or "Ports:" in scan.stdout, scan.stdout
    return sorted(int(port) for port in re.findall(r"(\d+)/open/tcp", scan.stdout))


def run_unit(master, unit: str):
    """Start a systemd unit as its timer would; its result and this run's journal lines."""
    started = master.check_output("date +%s.%N")
    run = master.run(f"systemctl start {unit}.service")
    invocation = master.check_output(f"systemctl show --property InvocationID --value {unit}")
    # journald stores what the unit wrote after the unit has ended; --sync returns once
    # everything logged before it is stored, so that the lines below are all there.
    master.check_output("journalctl --sync")
    journal = master.check_output(
        f"journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID={invocation}"
    )
    if not journal.strip():
        # Lines written as the process ended can miss the run's ID (as the alerts know).
        journal = master.check_output(
            f"journalctl --no-pager -o cat -u {unit}.service --since @{started}"
        )
    return run, journal


def generate_recent_data(master) -> None:
    """Fresh synthetic raw data for the 130 days up to today, as the daily run needs it."""
    start = master.check_output("date -d '-129 days' +%F")
    master.check_output(
        f"scoring-run scoring generate --force --quiet --users 300 --days 130 --start {start}"
    )


def ipv6_address(host) -> str:
    """The host's global IPv6 address on the test network (the scenarios give it one)."""
    address = host.check_output(
        "ip -6 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1"
    ).strip()
    # A missing address is a failure: the scan below would otherwise prove nothing.
    assert address.startswith("fd42:"), f"{host.backend.host} has no global IPv6 address"
    return address


def authorized_keys_checksums(master) -> dict[str, str]:
    listing = master.check_output(
        "find / -xdev -path /proc -prune -o -name authorized_keys -type f -print0"
        " | xargs -0r sha256sum"
    )
    return {line.split()[1]: line.split()[0] for line in listing.splitlines()}


def stack_containers(master, project: str = "is24de") -> dict[str, dict]:
    """`docker inspect` of each service's container in a Compose project, by service name."""
    ids = master.check_output(
        f"docker ps --all --quiet --filter label=com.docker.compose.project={project}"
    ).split()
    assert ids, f"no containers in Compose project {project}"
    inspected = json.loads(master.check_output("docker inspect " + " ".join(ids)))
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in inspected}


def all_healthy(master, project: str = "is24de") -> bool:
    states = [c["State"] for c in stack_containers(master, project).values()]
    return all(s.get("Health", {}).get("Status") == "healthy" for s in states)


def wait_for(check, within_seconds: float, what: str, interval: float = 1.0):
    """Poll `check()` until it returns something truthy; fail naming `what` when time runs out."""
    deadline = time.monotonic() + within_seconds
    while True:
        try:
            result = check()
        except (AssertionError, RuntimeError, OSError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within_seconds} s")
        time.sleep(interval)


def release_record(master, project: str = "is24de") -> dict[str, str]:
    return json.loads(master.file(f"/etc/scoring/{project}/release.json").content_string)


def luigid_tasks(master, status: str) -> set[str]:
    """Ids of the tasks production luigid lists with `status`, asked on the master."""
    query = urllib.parse.quote(json.dumps({"status": status}))
    answer = master.check_output(f"curl -sf 'http://127.0.0.1:8082/api/task_list?data={query}'")
    return set(json.loads(answer)["response"])


# --- JupyterHub, reached from the laptop through alice's forward (the `hub` fixture) ---
HUB_PORT = 8000
LOCAL_PORT = 18000
HUB = f"http://127.0.0.1:{LOCAL_PORT}"
CLIENT = "/root/hub_client.py"
TUNNEL_SOCKET = "/root/.jupyterhub-tunnel.sock"
# Good enough for the password quality rules: long, no user name, no dictionary word.
PASSWORDS = {"alice": "Quiet-harbor-71", "bob": "Amber-signal-38"}


def open_forwards(laptop, user: str, forwards: str, socket: str) -> None:
    """`user`'s SSH session from the laptop to the master with `forwards` (-L options), on a
    control socket so that it can be closed again; one left on that socket is closed first."""
    close_forwards(laptop, user, socket)
    opened = laptop.run(
        f"ssh {SSH_OPTIONS} -i /root/keys/{user} -M -S {socket} -f -N "
        f"-o ExitOnForwardFailure=yes {forwards} {user}@master"
    )
    assert opened.rc == 0, opened.stderr


def close_forwards(laptop, user: str, socket: str) -> None:
    laptop.run(f"ssh -S {socket} -O exit {user}@master")


@contextlib.contextmanager
def ssh_forwards(laptop, user: str, forwards: str, socket: str):
    """open_forwards for the duration of a with block."""
    open_forwards(laptop, user, forwards, socket)
    try:
        yield
    finally:
        close_forwards(laptop, user, socket)


def open_hub_forward(laptop, user: str, local_port: int, socket: str) -> None:
    """Copy hub_client.py to the laptop and forward `local_port` there to the master's hub."""
    copied = laptop.ansible(
        "copy",
        f"src={Path(__file__).with_name('hub_client.py')} dest={CLIENT} mode=0755",
        check=False,
    )
    assert not copied.get("failed"), copied.get("msg")
    open_forwards(laptop, user, f"-L {local_port}:127.0.0.1:{HUB_PORT}", socket)


def wait_for_hub(laptop, within_seconds: int = 90, hub: str = HUB):
    """Poll the hub's API through the forward until it answers, bounded in time."""
    return laptop.run(
        f"curl -sSf --retry {within_seconds} --retry-delay 1 --retry-all-errors "
        f"--retry-max-time {within_seconds} --max-time 10 {hub}/hub/api"
    )


def hub_client(laptop, *args: str, within_seconds: int = 600, hub: str = HUB):
    """hub_client.py on the laptop, ended after `within_seconds` whatever it waits for."""
    return laptop.run(f"timeout {within_seconds} python3 {CLIENT} --hub {hub} {shlex.join(args)}")


def login(laptop, username: str, password: str, *extra: str):
    return hub_client(laptop, "login", username, password, *extra)
