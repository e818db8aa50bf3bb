"""Mutual TLS for Dask: the dask_tls role on this machine, then a real scheduler and worker.

The role runs through a local connection with every path in a temporary directory. The
scheduler and the worker get no TLS options: they read the Dask config file the role wrote
(through DASK_CONFIG, as they would read /etc/dask on a host), so the file itself is tested.
"""

from __future__ import annotations

import datetime
import grp
import json
import os
import pwd
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from distributed import Client
from distributed.comm.core import CommClosedError
from distributed.security import Security
from testlib.playbooks import ansible_playbook

USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
# Seconds a refused client may keep trying; the scheduler refuses at once.
REFUSED_TIMEOUT = 3
STARTUP_TIMEOUT = 30


def _playbook(tmp_path: Path, name: str, role_vars: dict) -> Path:
    playbook = tmp_path / f"{name}.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "name": "Dask TLS on this machine",
                    "hosts": "all",
                    "connection": "local",
                    "gather_facts": False,
                    "roles": [{"role": "dask_tls", "vars": role_vars}],
                }
            ]
        )
    )
    return playbook


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return ansible_playbook("-e", f"ansible_python_interpreter={sys.executable}", *arguments)


def _recap_changed(output: str) -> int:
    recap = output.split("PLAY RECAP", 1)[1]
    return int(recap.split("changed=", 1)[1].split()[0])


@dataclass
class Applied:
    ca_dir: Path
    tls_dir: Path
    config_dir: Path
    config: dict
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]

    def tls(self, role: str) -> dict:
        return self.config["distributed"]["comm"]["tls"][role]

    @property
    def tls_ca_file(self) -> str:
        return self.config["distributed"]["comm"]["tls"]["ca-file"]


@pytest.fixture(scope="module")
def applied(tmp_path_factory) -> Applied:
    """The role applied twice to localhost, every path in a temporary directory."""
    tmp_path = tmp_path_factory.mktemp("dask_tls")
    ca_dir, tls_dir, config_dir = tmp_path / "ca", tmp_path / "tls", tmp_path / "dask"
    playbook = _playbook(
        tmp_path,
        "apply",
        {
            "dask_tls_ca_dir": str(ca_dir),
            "dask_tls_dir": str(tls_dir),
            "dask_tls_config_dir": str(config_dir),
            "dask_tls_owner": USER,
            "dask_tls_group": GROUP,
            "dask_tls_client_group": GROUP,
            "dask_tls_packages": [],
            # What a vaulted passphrase gives the role (test-only value).
            "dask_tls_ca_passphrase": "test-only CA passphrase",
        },
    )
    first = _run("-i", "localhost,", str(playbook))
    assert first.returncode == 0, first.stdout + first.stderr
    second = _run("-i", "localhost,", str(playbook))
    assert second.returncode == 0, second.stdout + second.stderr
    config = yaml.safe_load((config_dir / "tls.yaml").read_text())
    return Applied(ca_dir, tls_dir, config_dir, config, first, second)


def test_a_second_run_changes_nothing(applied):
    assert _recap_changed(applied.first.stdout) > 0
    assert _recap_changed(applied.second.stdout) == 0, applied.second.stdout


def test_keys_are_private_and_the_ca_key_stays_on_the_controller(applied):
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(applied.ca_dir / "ca.key") == 0o600
    assert sorted(path.name for path in applied.tls_dir.iterdir()) == [
        "ca.pem",
        "client.key",
        "client.pem",
        "host.key",
        "host.pem",
    ]
    client_key = Path(applied.tls("client")["key"])
    assert mode(client_key) == 0o640
    assert grp.getgrgid(client_key.stat().st_gid).gr_name == GROUP
    host_key = Path(applied.tls("scheduler")["key"])
    assert mode(host_key) == 0o640
    assert grp.getgrgid(host_key.stat().st_gid).gr_name == GROUP
    assert applied.config["distributed"]["comm"]["require-encryption"] is True


def test_the_ca_key_is_encrypted_with_the_passphrase(applied):
    key = (applied.ca_dir / "ca.key").read_bytes()
    with pytest.raises(TypeError, match="encrypted"):
        serialization.load_pem_private_key(key, password=None)
    serialization.load_pem_private_key(key, password=b"test-only CA passphrase")
    assert "test-only CA passphrase" not in applied.first.stdout + applied.second.stdout


def _usages(certificate: x509.Certificate) -> list:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_certificates_are_signed_by_the_ca_for_their_use(applied):
    ca = x509.load_pem_x509_certificate(Path(applied.tls_ca_file).read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    host = x509.load_pem_x509_certificate(Path(applied.tls("worker")["cert"]).read_bytes())
    client = x509.load_pem_x509_certificate(Path(applied.tls("client")["cert"]).read_bytes())
    for certificate in (host, client):
        certificate.verify_directly_issued_by(ca)
    names = host.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert _usages(host) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _usages(client) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_bad_input_stops_the_run_before_anything_is_written(tmp_path):
    """Two hosts, each with one mistake: both fail at their own check, nothing is written."""
    written = tmp_path / "written"
    playbook = _playbook(
        tmp_path,
        "bad",
        {
            "dask_tls_dir": str(written / "tls"),
            "dask_tls_config_dir": str(written / "dask"),
            "dask_tls_owner": USER,
            "dask_tls_group": GROUP,
            "dask_tls_client_group": GROUP,
            "dask_tls_packages": [],
        },
    )
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        "empty-ca-dir": {"dask_tls_ca_dir": ""},
                        "address-not-a-list": {
                            "dask_tls_ca_dir": str(written / "ca"),
                            "dask_tls_ip_addresses": "192.0.2.10",
                        },
                    }
                }
            }
        )
    )
    result = _run("-i", str(inventory), str(playbook))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert "dask_tls_ca_dir must name the directory on the controller" in output
    assert "dask_tls_ip_addresses must be a list of IPv4 or IPv6 addresses" in output
    assert 'it is "192.0.2.10"' in output
    assert not written.exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _log_tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-30:])


@dataclass
class Cluster:
    address: str
    applied: Applied

    def security(self) -> Security:
        """What a notebook gets from the config file: the client key and certificate."""
        client = self.applied.tls("client")
        return Security(
            tls_ca_file=self.applied.tls_ca_file,
            tls_client_cert=client["cert"],
            tls_client_key=client["key"],
            require_encryption=True,
        )


@pytest.fixture(scope="module")
def cluster(applied, tmp_path_factory) -> Iterator[Cluster]:
    """A scheduler and a worker on 127.0.0.1, configured by the role's config file only."""
    logs = tmp_path_factory.mktemp("dask_logs")
    port = _free_port()
    address = f"tls://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("DASK_")}
    env["DASK_CONFIG"] = str(applied.config_dir)
    commands = {
        "scheduler": [
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        "worker": [
            "distributed.cli.dask_worker",
            address,
            "--host",
            "127.0.0.1",
            "--no-nanny",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--name",
            "tls-worker",
        ],
    }
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, arguments in commands.items():
            with (logs / f"{name}.log").open("w") as log:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", *arguments],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        cluster = Cluster(address, applied)
        _wait_for_one_worker(cluster, processes, logs)
        yield cluster
    finally:
        # The worker first: without its scheduler it would keep trying to reconnect.
        for process in reversed(processes.values()):
            process.terminate()
        for process in reversed(processes.values()):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_one_worker(cluster: Cluster, processes: dict, logs: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                pytest.fail(
                    f"the {name} exited ({process.returncode}):\n{_log_tail(logs / f'{name}.log')}"
                )
        try:
            with Client(cluster.address, security=cluster.security(), timeout=2) as client:
                if client.scheduler_info()["workers"]:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(
        f"no worker joined {cluster.address} within {STARTUP_TIMEOUT} s:\n"
        + "\n".join(_log_tail(logs / f"{name}.log") for name in processes)
    )


def test_a_client_with_the_client_certificate_computes_on_the_worker(cluster):
    with Client(cluster.address, security=cluster.security(), timeout=10) as client:
        workers = client.scheduler_info()["workers"]
        assert [worker["name"] for worker in workers.values()] == ["tls-worker"]
        assert all(address.startswith("tls://") for address in workers)
        assert client.submit(sum, [1, 2]).result(timeout=10) == 3


def _scheduler_answer(cluster: Cluster, certificate: tuple[Path, Path] | None) -> str:
    """How the scheduler answers a TLS client that trusts the cluster's CA and shows `certificate`.

    Plain `ssl`, which reads the scheduler's alert before sending anything: a Dask client
    writes at once and may see only the closed connection. With TLS 1.3 the scheduler checks
    the client's certificate after the client's side of the handshake is done, so a refusal
    arrives as an alert on the first read.
    """
    context = ssl.create_default_context(cafile=cluster.applied.tls_ca_file)
    context.check_hostname = False
    if certificate:
        context.load_cert_chain(*certificate)
    host, port = cluster.address.removeprefix("tls://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        try:
            with context.wrap_socket(raw) as tls:
                tls.recv(1)
        except ssl.SSLError as error:
            return str(error.reason)
        except TimeoutError:
            return "no answer: the connection was accepted"
    return "the connection was closed without an alert"


def test_a_client_without_a_certificate_is_refused(cluster):
    # Dask's own client cannot even be set up for TLS without a certificate.
    assert _scheduler_answer(cluster, None) == "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    plain = cluster.address.replace("tls://", "tcp://")
    # The scheduler speaks TLS only: it drops a connection that starts in plain text.
    with pytest.raises(CommClosedError):
        Client(plain, security=Security(require_encryption=False), timeout=REFUSED_TIMEOUT)


def _foreign_client_certificate(directory: Path) -> tuple[Path, Path]:
    """A client key and certificate from a CA of our own, not the cluster's."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Another CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "intruder.pem", directory / "intruder.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_a_client_with_a_certificate_from_another_ca_is_refused(cluster, tmp_path):
    cert, key = _foreign_client_certificate(tmp_path)
    assert _scheduler_answer(cluster, (cert, key)) == "TLSV1_ALERT_UNKNOWN_CA"
    # The intruder trusts the cluster's CA, so only the scheduler's check can stop it.
    intruder = Security(
        tls_ca_file=cluster.applied.tls_ca_file,
        tls_client_cert=str(cert),
        tls_client_key=str(key),
        require_encryption=True,
    )
    with pytest.raises(CommClosedError):
        Client(cluster.address, security=intruder, timeout=REFUSED_TIMEOUT)
