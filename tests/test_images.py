"""The disposable test hosts' images (molecule/images/build) start up to date.

Each image is built from a Debian snapshot and upgraded from the security suite at build
time; a host that started with known holes would make every hardening test pass on a
system nobody runs. Checked the way an auditor would: a container of the image refreshes
its package lists and asks apt what it would upgrade.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from testlib.docker_engine import docker, needs_docker

IMAGES = Path(__file__).resolve().parents[1] / "molecule" / "images"
NAMES = sorted(recipe.parent.name for recipe in IMAGES.glob("*/recipe"))
MAX_AGE_DAYS = 7  # molecule/images/build's TEST_IMAGE_MAX_AGE_DAYS default


def _label(image: str, label: str) -> str:
    inspect = docker(
        "image", "inspect", "--format", f'{{{{ index .Config.Labels "{label}" }}}}', image
    )
    assert inspect.returncode == 0, f"{image} is not built: run molecule/images/build"
    return inspect.stdout.strip()


@needs_docker
@pytest.mark.parametrize("name", NAMES)
def test_no_security_update_is_pending_in_the_image(name):
    image = f"scoring-test/{name}:latest"
    built = int(_label(image, "org.scoring.built"))
    assert time.time() - built < MAX_AGE_DAYS * 86400, f"{image} is older than {MAX_AGE_DAYS} days"
    run = docker(
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "apt-get -qq update && apt-get --simulate upgrade",
    )
    assert run.returncode == 0, run.stderr
    pending = [line for line in run.stdout.splitlines() if re.match(r"^Inst .*-security", line)]
    assert pending == [], f"{image} starts with pending security updates:\n" + "\n".join(pending)
