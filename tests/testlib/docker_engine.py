"""The Docker engine the image tests run against, and a skip marker for machines without one."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def _docker_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    try:
        info = subprocess.run(
            ["docker", "info"], capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired:
        return "`docker info` timed out"
    if info.returncode != 0:
        return f"`docker info` failed: the Docker engine is not running ({info.stderr.strip()})"
    return None


DOCKER_PROBLEM = _docker_problem()
needs_docker = pytest.mark.skipif(DOCKER_PROBLEM is not None, reason=str(DOCKER_PROBLEM))


def docker(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
