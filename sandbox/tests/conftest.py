"""What the sandbox checks share: one sandbox for the whole run, made by `make sandbox`
and reached as the demo member through the ssh config it generates.

The checks refuse to touch a sandbox that is already running (it may be somebody's
work). SANDBOX_REUSE=1 checks the running sandbox as it is instead, and leaves it up:
for working on these tests without bringing up a new sandbox each time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "is24de"
CONTAINER = f"{PROJECT}-sandbox"
LABEL = f"org.scoring.sandbox={PROJECT}"
SSH_CONFIG = ROOT / ".sandbox" / "ssh_config"
MEMBER = "demo"
# The forwards of the generated ssh config: hub, luigid, scheduler, its dashboard, the worker's.
FORWARDS = (8000, 8082, 8786, 8787, 8789)
REUSE = os.environ.get("SANDBOX_REUSE") == "1"


def run(argv: list[str], timeout: int, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=timeout, **kwargs
    )


def tail(result: subprocess.CompletedProcess[str], lines: int = 60) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


LISTINGS = {
    "container": ["docker", "ps", "--all", "--format", "{{.Names}}"],
    "volume": ["docker", "volume", "ls", "--format", "{{.Name}}"],
    "network": ["docker", "network", "ls", "--format", "{{.Name}}"],
}


def docker_objects(kind: str) -> list[str]:
    """Names of the sandbox's containers, volumes or networks (found by its label)."""
    result = run([*LISTINGS[kind], "--filter", f"label={LABEL}"], timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def ssh(*command: str, timeout: int = 60, **kwargs) -> subprocess.CompletedProcess[str]:
    return run(
        ["ssh", "-F", str(SSH_CONFIG), "-o", "BatchMode=yes", PROJECT, *command], timeout, **kwargs
    )


def wait_for_port(port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test, for fixtures that act on a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def ours():
    """Only a sandbox this run started is touched, and removed, by it."""
    running = docker_objects("container")
    if REUSE:
        if not running or not SSH_CONFIG.exists():
            pytest.fail("SANDBOX_REUSE=1 checks a running sandbox, and none is up: make sandbox")
    elif running:
        pytest.fail(
            f"A sandbox ({CONTAINER}) is already running. These tests bring up and remove "
            "their own; run `make sandbox-down` first if you do not need yours "
            "(or check it as it is with SANDBOX_REUSE=1)."
        )


@pytest.fixture(scope="session")
def sandbox(ours):
    if REUSE:
        return None
    result = run(["make", "sandbox"], timeout=3600)
    assert result.returncode == 0, f"make sandbox failed:\n{tail(result)}"
    assert f"ssh -F .sandbox/ssh_config {PROJECT}" in result.stdout, tail(result)
    return result


@pytest.fixture(scope="session")
def tunnel(sandbox):
    """A real login as the demo member with the ssh config's forwards, as a user opens it."""
    process = subprocess.Popen(
        ["ssh", "-F", str(SSH_CONFIG), "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
         "-N", PROJECT],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    try:
        for port in FORWARDS:
            if process.poll() is not None:
                pytest.fail(f"ssh exited with {process.returncode}: {process.stderr.read()}")
            wait_for_port(port, deadline)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
