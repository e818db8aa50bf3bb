"""Team access, checked from the laptop the way a team member would: a port scan, SSH
logins with the generated config and its forwards, sudo, and bad answers from the key server."""

from __future__ import annotations

import re
import shlex

import pytest
from testlib.molecule import (
    EPHEMERAL,
    MODERN_ALGORITHMS,
    SSH_OPTIONS,
    authorized_keys_checksums,
    http_get,
    ipv6_address,
    open_ports,
    ssh,
    wait_for,
)
from testlib.playbooks import run_playbook

CANARY_PORT = 18080
TEST_LISTENER_PORT = 8788


@pytest.fixture(scope="module")
def canary(master):
    """A container published on 0.0.0.0, the mistake the firewall must contain."""
    master.check_output(
        "tar -C / -c bin/busybox | docker import -c 'ENTRYPOINT [\"/bin/busybox\"]' - canary:latest"
    )
    master.run("docker rm -f canary")
    master.check_output(
        f"mkdir -p /srv/canary && echo canary-page > /srv/canary/index.html && "
        f"docker run -d --name canary -v /srv/canary:/www:ro -p 0.0.0.0:{CANARY_PORT}:8080 "
        f"canary httpd -f -p 8080 -h /www"
    )
    ready = http_get(master, f"http://127.0.0.1:{CANARY_PORT}/")
    assert ready.rc == 0, f"the canary never answered on the master itself: {ready.stderr}"
    yield CANARY_PORT
    master.run("docker rm -f canary")


def test_port_scan_finds_only_ssh(laptop, canary):
    assert open_ports(laptop, "master") == [22]


def test_ipv6_port_scan_finds_only_ssh(laptop, master):
    assert open_ports(laptop, ipv6_address(master), "-6") == [22]


def test_canary_published_on_all_addresses_is_unreachable(laptop, master, canary):
    assert master.run(f"curl -sf http://127.0.0.1:{canary}/").stdout.strip() == "canary-page"
    assert laptop.run(f"curl -s --max-time 5 http://master:{canary}/").rc != 0


def test_firewall_leaves_docker_tables_alone(master):
    master.check_output("systemctl restart nftables.service")
    tables = master.check_output("nft list tables")
    assert "inet scoring_firewall" in tables
    assert re.search(r"table ip (nat|filter)", tables), f"Docker's tables are gone: {tables}"


def test_sshd_hardening_wins_over_other_dropins(master):
    assert master.file("/etc/ssh/sshd_config.d/50-cloud-init.conf").contains(
        "PasswordAuthentication yes"
    )
    effective = master.check_output("sshd -T -C user=alice,host=laptop,addr=192.0.2.1")
    for setting in (
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "allowtcpforwarding local",
        "x11forwarding no",
        "allowagentforwarding no",
        "permitrootlogin without-password",
    ):
        assert setting in effective.splitlines(), setting


def test_sshd_limits_logging_and_host_keys(master):
    effective = master.check_output("sshd -T -C user=alice,host=laptop,addr=192.0.2.1").splitlines()
    for setting in (
        "maxauthtries 3",
        "loglevel VERBOSE",
        "maxstartups 10:30:60",
        "clientaliveinterval 300",
        "clientalivecountmax 3",
        "logingracetime 30",
    ):
        assert setting in effective, setting
    assert [line for line in effective if line.startswith("hostkey ")] == [
        "hostkey /etc/ssh/ssh_host_ed25519_key"
    ]
    for kind in ("ecdsa", "dsa", "rsa"):
        assert not master.file(f"/etc/ssh/ssh_host_{kind}_key").exists, kind
        assert not master.file(f"/etc/ssh/ssh_host_{kind}_key.pub").exists, kind


@pytest.mark.parametrize(
    ("option", "refusal"),
    [
        ("-o KexAlgorithms=ecdh-sha2-nistp256,ecdh-sha2-nistp521", "no matching key exchange"),
        ("-o KexAlgorithms=diffie-hellman-group14-sha256", "no matching key exchange"),
        ("-o HostKeyAlgorithms=ecdsa-sha2-nistp256,rsa-sha2-512,ssh-rsa", "no matching host key"),
        ("-o Ciphers=aes128-ctr -o MACs=hmac-sha1,hmac-sha1-etm@openssh.com", "no matching MAC"),
        ("-o Ciphers=aes128-ctr -o MACs=umac-64-etm@openssh.com,hmac-sha2-256", "no matching MAC"),
        ("-o Ciphers=aes256-cbc,3des-cbc", "no matching cipher"),
    ],
    ids=["nist-kex", "dh-kex", "ecdsa-rsa-hostkey", "sha1-mac", "64bit-eam-mac", "cbc"],
)
def test_legacy_algorithms_are_refused(laptop, option, refusal):
    """A client that insists on an algorithm the audit fails gets no connection at all."""
    options = SSH_OPTIONS.replace(MODERN_ALGORITHMS, "")
    attempt = laptop.run(f"ssh {options} {option} -i /root/keys/alice alice@master true")
    assert attempt.rc == 255, attempt.stdout + attempt.stderr
    assert refusal in attempt.stderr, attempt.stderr


def _fingerprint(laptop, public_key: str) -> str:
    return laptop.check_output(f"ssh-keygen -l -E sha256 -f {public_key}").split()[1]


def test_a_login_logs_the_fingerprints_of_every_key_offered(laptop, master):
    """LogLevel VERBOSE: the key that was refused is named as well as the one that got in."""
    since = master.check_output("date +%s")
    login = ssh(laptop, "alice", "true", "-o IdentitiesOnly=yes -i /root/keys/bob")
    assert login.rc == 0, login.stderr
    refused, accepted = (
        _fingerprint(laptop, "/root/keys/bob.pub"),
        _fingerprint(laptop, "/root/keys/alice.pub"),
    )

    def journal():
        master.run("journalctl --sync")
        text = master.check_output(f"journalctl -u ssh.service --no-pager -o cat --since @{since}")
        return text if refused in text and accepted in text else None

    text = wait_for(journal, 20, "both fingerprints in sshd's journal")
    login_line = r"publickey for alice from \S+ port \d+ ssh2: ED25519 "
    assert re.search(rf"Failed {login_line}{re.escape(refused)}", text), text
    assert re.search(rf"Accepted {login_line}{re.escape(accepted)}", text), text


@pytest.fixture(scope="module")
def member_config(laptop, master):
    """alice's generated ssh config, known_hosts and key, where the config expects them."""
    laptop.check_output("mkdir -p /root/.ssh && cp /root/keys/alice /root/.ssh/id_ed25519")
    for source, destination in (
        (EPHEMERAL / "ssh" / "alice.ssh_config", "/root/.ssh/config"),
        (EPHEMERAL / "ssh" / "known_hosts", "/root/.ssh/is24de.known_hosts"),
    ):
        assert source.exists(), f"{source} was not generated"
        laptop.ansible("copy", f"src={source} dest={destination} mode=0600", check=False)
    master.run("systemctl stop forward-test.service; systemctl reset-failed forward-test.service")
    master.check_output(
        "mkdir -p /srv/forward-test && echo through-the-tunnel > /srv/forward-test/index.html && "
        "systemd-run --unit=forward-test python3 -m http.server --bind 127.0.0.1 "
        f"--directory /srv/forward-test {TEST_LISTENER_PORT}"
    )
    yield "/root/.ssh/config"
    laptop.run("pkill -f 'ssh .*is24de'")
    master.run("systemctl stop forward-test.service")


def test_generated_config_logs_in_with_verified_host_key(laptop, member_config):
    login = laptop.run(f"ssh -o BatchMode=yes {MODERN_ALGORITHMS} is24de id -un")
    assert login.rc == 0, login.stderr
    assert login.stdout.strip() == "alice"
    config = laptop.file(member_config).content_string
    assert "StrictHostKeyChecking yes" in config
    assert "HostKeyAlgorithms ssh-ed25519\n" in config, config


def test_members_log_in_after_the_host_keys_changed(laptop, master, member_config):
    """The master was first set up with Debian's RSA and ECDSA keys as well (prepare.yml);
    the converge removed them, and the regenerated known_hosts holds what is left."""
    previous = laptop.file("/root/previous.known_hosts").content_string
    assert " ecdsa-sha2-nistp256 " in previous, previous
    generated = (EPHEMERAL / "ssh" / "known_hosts").read_text()
    assert [line.split()[1] for line in generated.splitlines()] == ["ssh-ed25519"], generated
    # The ed25519 key is the one members knew: an old known_hosts still matches it.
    assert generated.strip() in previous.splitlines(), (generated, previous)
    offered = laptop.run("ssh-keyscan -T 10 -t rsa,ecdsa,ed25519 master 2>/dev/null").stdout
    keys = [line.split()[1] for line in offered.splitlines() if not line.startswith("#")]
    assert keys == ["ssh-ed25519"], offered
    for known_hosts in ("/root/.ssh/is24de.known_hosts", "/root/previous.known_hosts"):
        login = laptop.run(
            f"ssh -o BatchMode=yes {MODERN_ALGORITHMS} -o UserKnownHostsFile={known_hosts} "
            "is24de id -un"
        )
        assert login.rc == 0, (known_hosts, login.stderr)
        assert login.stdout.strip() == "alice"
        assert "WARNING" not in login.stderr, login.stderr


def test_an_agent_with_many_keys_logs_in_with_the_generated_config(laptop, member_config):
    """MaxAuthTries 3 counts every key offered: the generated config offers the member's key
    alone (IdentityFile, IdentitiesOnly yes), however many keys the agent holds."""
    laptop.check_output(
        "rm -rf /root/agent-keys && mkdir -m 0700 /root/agent-keys && for n in 1 2 3 4; do "
        "ssh-keygen -q -t ed25519 -N '' -C other-$n -f /root/agent-keys/other-$n; done"
    )
    with_agent = 'ssh-agent sh -c \'ssh-add -q /root/agent-keys/other-[1-4] && exec "$0" "$@"\''
    try:
        member = laptop.run(f"{with_agent} ssh -o BatchMode=yes {MODERN_ALGORITHMS} is24de true")
        assert member.rc == 0, member.stderr
        # The same key last in line after the agent's four: refused after three tries.
        crowded = laptop.run(
            f"{with_agent} ssh -F /dev/null {SSH_OPTIONS} -o IdentitiesOnly=no "
            "-i /root/.ssh/id_ed25519 alice@master true"
        )
        assert crowded.rc == 255, crowded.stderr
        assert "Too many authentication failures" in crowded.stderr, crowded.stderr
    finally:
        laptop.run("rm -rf /root/agent-keys")


def test_forward_reaches_a_loopback_listener_on_the_master(laptop, master, member_config):
    assert laptop.run(f"curl -s --max-time 3 http://master:{TEST_LISTENER_PORT}/").rc != 0
    tunnel = laptop.run("ssh -o BatchMode=yes -o ExitOnForwardFailure=yes -f -N is24de")
    assert tunnel.rc == 0, tunnel.stderr
    page = http_get(laptop, f"http://127.0.0.1:{TEST_LISTENER_PORT}/")
    assert page.stdout.strip() == "through-the-tunnel"


PASSWORD_LOGIN = (
    f"ssh {SSH_OPTIONS.replace('BatchMode=yes', 'BatchMode=no')} -o PubkeyAuthentication=no "
    "-o PreferredAuthentications=password,keyboard-interactive -v"
)


def test_password_login_is_refused(laptop, master):
    saved = master.check_output("getent shadow alice | cut -d: -f2")
    try:
        master.check_output("echo 'alice:Quartz-lantern-47' | chpasswd")
        attempt = laptop.run(f"sshpass -p Quartz-lantern-47 {PASSWORD_LOGIN} alice@master true")
        assert attempt.rc != 0
        assert "Authentications that can continue: publickey" in attempt.stderr
    finally:
        master.check_output(f"usermod -p {shlex.quote(saved)} alice")


def test_root_password_login_is_refused(laptop, master):
    """Root has a password for this test only: sshd still offers nothing but keys."""
    saved = master.check_output("getent shadow root | cut -d: -f2")
    try:
        master.check_output("echo 'root:Quartz-lantern-47' | chpasswd")
        attempt = laptop.run(f"sshpass -p Quartz-lantern-47 {PASSWORD_LOGIN} root@master true")
        assert attempt.rc != 0
        assert "Permission denied (publickey)" in attempt.stderr, attempt.stderr
    finally:
        master.check_output(f"usermod -p {shlex.quote(saved)} root")


def test_removed_member_is_locked_out(laptop, master):
    assert ssh(laptop, "carol", "true").rc != 0
    assert ssh(laptop, "alice", "true").rc == 0, "a present member with the same setup must get in"
    assert master.run("pgrep --uid carol").rc == 1, "carol's processes are still running"
    assert not master.file("/home/carol/.ssh/authorized_keys").exists
    assert master.file("/home/carol").is_directory, "a removed member's home is kept"
    assert "team" not in master.user("carol").groups


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("ghost404", "the key server answered 404"),
        ("emptykeys", "no public keys listed"),
        ("htmlpage", "the key server sent an HTML page"),
        ("notakey", "line 2 of http://laptop:8080/notakey.keys is not a public key"),
    ],
)
def test_bad_key_answer_fails_and_changes_nothing(master, member, reason):
    before = authorized_keys_checksums(master)
    assert any(path.endswith("/alice/.ssh/authorized_keys") for path in before)
    team = [{"github": "alice"}, {"github": "Bob", "admin": True}, {"github": member}]
    run = run_playbook("playbooks/access.yml", {"users_team": team})
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert f"{member}: {reason}" in output, output
    assert authorized_keys_checksums(master) == before
    assert master.run(f"getent passwd {member}").rc != 0, "an account was created regardless"
