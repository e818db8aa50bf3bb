"""The Dask cluster across hosts: both workers join and share a computation, only SSH
is open to anyone else, a client needs a certificate from the cluster's CA, and a host
taken out of the inventory leaves the cluster and the allow-list."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from testlib.molecule import ipv6_address, open_ports
from testlib.playbooks import run_playbook

IMAGE = "drtools/is24de-worker:molecule"
COMPOSE = "docker compose -p is24de exec -T worker"
MASTER_WORKER = "is24de-worker-1"
# The extra worker host's inventory name (its Dask worker's name); on the network it is `worker2`.
WORKER2 = "scaleout-worker2"
CLUSTER_PORTS = (8786, 8787, 8789, 8790, 8791)


def address_of(host) -> str:
    return host.check_output("ip -4 -o route get 1.1.1.1 | sed -E 's/.* src ([0-9.]+).*/\\1/'")


def on_master(master, script: str) -> str:
    """Run a Dask client script in the master's `worker` container (which has the client
    certificate) and return what it prints."""
    result = master.run(f"{COMPOSE} python3 - <<'EOF'\n{script}\nEOF")
    assert result.rc == 0, result.stderr
    return result.stdout


WORKERS = """
import json, os
from distributed import Client
with Client(os.environ["SCORING_DASK_ADDRESS"], timeout=30) as client:
    info = client.scheduler_info(n_workers=-1)["workers"]
    print(json.dumps({w["name"]: [address, w["resources"]] for address, w in info.items()}))
"""


def test_scheduler_lists_both_workers(master, worker2):
    workers = json.loads(on_master(master, WORKERS))
    assert set(workers) == {MASTER_WORKER, WORKER2}, workers
    assert workers[MASTER_WORKER][0] == f"tls://{address_of(master)}:8790", workers
    assert workers[WORKER2][0] == f"tls://{address_of(worker2)}:8790", workers
    # Only the master's worker sees the data root, and the scoring tasks ask for it.
    assert workers[MASTER_WORKER][1] == {"data": 2}, workers
    assert workers[WORKER2][1] == {}, workers
    assert "SCORING_DASK_DATA_RESOURCE=data" in master.check_output(f"{COMPOSE} env")


def test_a_computation_runs_on_both_workers(master):
    script = """
import json, os, time
from distributed import Client, get_task_stream
def work(x):
    time.sleep(0.05)  # the work: long enough for the scheduler to spread the tasks
    return x * x
with Client(os.environ["SCORING_DASK_ADDRESS"], timeout=30) as client:
    client.wait_for_workers(2, timeout=60)
    with get_task_stream(client) as stream:
        squares = client.map(work, range(200))
        total = client.submit(sum, squares).result()
    names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
    used = sorted({names[record["worker"]] for record in stream.data})
    print(json.dumps({"total": total, "used": used}))
"""
    result = json.loads(on_master(master, script))
    # The sum needs every square, so one worker fetched the other's results.
    assert result["total"] == sum(x * x for x in range(200))
    assert result["used"] == sorted([MASTER_WORKER, WORKER2]), result


@pytest.mark.parametrize("target", ["master", "worker2"])
def test_only_ssh_is_open_from_the_laptop(laptop, target):
    assert open_ports(laptop, target) == [22]
    # The cluster's ports are dropped for the laptop, not merely closed.
    ports = ",".join(str(port) for port in CLUSTER_PORTS)
    scan = laptop.run(f"timeout 120 nmap -Pn -sS -p {ports} --max-retries 1 -oG - {target}")
    assert scan.rc == 0, scan.stderr
    assert set(re.findall(r"\d+/(\w+)/tcp", scan.stdout)) == {"filtered"}, scan.stdout


@pytest.mark.parametrize("target", ["master", "worker2"])
def test_only_ssh_is_open_over_ipv6(laptop, target, request):
    host = request.getfixturevalue(target)
    assert open_ports(laptop, ipv6_address(host), "-6") == [22]


TLS_DIR = "/etc/scoring/dask-tls"


def client_on_worker2(worker2, master, security: str, protocol: str = "tls"):
    """A Dask client on worker2 (a cluster member, so the firewall lets it through),
    from the release image but without the host's Dask config: `security` is the
    Python expression of its distributed.security.Security, or None."""
    scheduler = f"{protocol}://{address_of(master)}:8786"
    script = (
        "from distributed import Client\nfrom distributed.security import Security\n"
        f"Client({scheduler!r}, security={security}, timeout=10).close()\nprint('connected')\n"
    )
    return worker2.run(
        f"docker run --rm -i --user 0 --network host -v {TLS_DIR}:{TLS_DIR}:ro "
        f"-v /tmp/other-ca:/tmp/other-ca:ro {IMAGE} python3 - <<'EOF'\n{script}EOF"
    )


@pytest.fixture(scope="module")
def other_ca(worker2):
    """A key and self-signed certificate that look right but come from another CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "worker2")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    files = {
        "key.pem": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "cert.pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }
    worker2.check_output("mkdir -p /tmp/other-ca")
    for filename, content in files.items():
        worker2.check_output(f"cat > /tmp/other-ca/{filename} <<'EOF'\n{content}EOF")
    yield
    worker2.run("rm -rf /tmp/other-ca")


def test_the_cluster_client_certificate_connects_from_worker2(worker2, master):
    """The control for the refusals below: the same client with the cluster's files."""
    security = (
        f"Security(tls_ca_file='{TLS_DIR}/ca.pem', tls_client_cert='{TLS_DIR}/client.pem', "
        f"tls_client_key='{TLS_DIR}/client.key', require_encryption=True)"
    )
    result = client_on_worker2(worker2, master, security)
    assert result.rc == 0, result.stderr
    assert "connected" in result.stdout


HANDSHAKE = """
import socket, ssl, sys
host, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
context = ssl.create_default_context(cafile="{ca}")
context.check_hostname = False
if cert:
    context.load_cert_chain(cert, key)
raw = socket.create_connection((host, 8786), timeout=10)
try:
    channel = context.wrap_socket(raw)
    # TLS 1.3 sends the server's verdict on the client's certificate after the
    # handshake: as an alert on the first read; an accepted client gets Dask's own
    # greeting, or silence until the timeout.
    print("closed" if channel.recv(1) == b"" else "answered")
except ssl.SSLError as error:
    print("alert", error.reason)
except TimeoutError:
    print("accepted")
"""


def handshake_from_worker2(worker2, master, cert: str = "", key: str = "") -> str:
    """A raw TLS handshake with the scheduler from worker2 (the firewall lets it through),
    trusting the cluster's CA: what comes back is the scheduler's own verdict."""
    script = HANDSHAKE.format(ca=f"{TLS_DIR}/ca.pem")
    result = worker2.run(
        f"docker run --rm -i --user 0 --network host -v {TLS_DIR}:{TLS_DIR}:ro "
        f"-v /tmp/other-ca:/tmp/other-ca:ro {IMAGE} python3 - {address_of(master)} "
        f"'{cert}' '{key}' <<'EOF'\n{script}EOF"
    )
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def test_the_handshake_control_is_accepted(worker2, master):
    """The same handshake with the cluster's client key: the scheduler keeps it open."""
    verdict = handshake_from_worker2(
        worker2, master, f"{TLS_DIR}/client.pem", f"{TLS_DIR}/client.key"
    )
    assert verdict in {"answered", "accepted"}, verdict


def test_a_client_without_a_certificate_is_refused_by_the_scheduler(worker2, master):
    verdict = handshake_from_worker2(worker2, master)
    # Alerts the scheduler sends (TLS 1.3, or a TLS 1.2 handshake it aborts).
    assert verdict in {
        "alert TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "alert SSLV3_ALERT_HANDSHAKE_FAILURE",
    }


def test_a_certificate_from_another_ca_is_refused_by_the_scheduler(worker2, master, other_ca):
    verdict = handshake_from_worker2(
        worker2, master, "/tmp/other-ca/cert.pem", "/tmp/other-ca/key.pem"
    )
    assert verdict in {"alert TLSV1_ALERT_UNKNOWN_CA", "alert SSLV3_ALERT_BAD_CERTIFICATE"}, verdict


def test_a_plain_tcp_client_is_refused(worker2, master):
    result = client_on_worker2(worker2, master, "None", "tcp")
    assert result.rc != 0, result.stdout
    assert "connected" not in result.stdout


def test_members_read_the_client_key_but_never_the_host_key(master, worker2):
    for host in (master, worker2):
        host_key = host.file(f"{TLS_DIR}/host.key")
        assert (host_key.user, host_key.group, host_key.mode) == ("root", "dask-tls", 0o640)
        assert (
            "alice" not in host.group("dask-tls").members if host.group("dask-tls").exists else True
        )
    assert master.run(f"sudo -u alice cat {TLS_DIR}/host.key").rc != 0
    assert master.run(f"sudo -u alice cat {TLS_DIR}/client.key").rc == 0


def allowed_sources(master) -> str:
    return master.check_output("nft list table inet scoring_firewall")


def test_removing_worker2_retires_it_and_shrinks_the_allow_list(master, worker2, tmp_path):
    worker2_address = address_of(worker2)
    assert worker2_address in allowed_sources(master)

    # The scenario's inventory without worker2, beside the same group_vars.
    source = Path(os.environ["MOLECULE_INVENTORY_FILE"])
    inventory = yaml.safe_load(source.read_text())
    # Molecule writes the groups beside `all`.
    del inventory["dask_workers"]
    del inventory["all"]["hosts"][WORKER2]
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "group_vars").symlink_to(source.parent / "group_vars")
    result = run_playbook(
        "molecule/scaleout/converge.yml", inventory=tmp_path / "inventory.yml", timeout=1200
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

    workers = json.loads(on_master(master, WORKERS))
    assert list(workers) == [MASTER_WORKER], workers
    assert worker2_address not in allowed_sources(master)
