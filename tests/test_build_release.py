"""app/deploy/build_release against the real Docker engine.

One good build (saved to an archive, and pushed to a throwaway registry on loopback when
Debian's `docker-registry` is installed) is shared by the tests; a second build with a failing
extra smoke check must leave no tag, no archive and nothing in the registry. The images are
built on scoring-test/worker-base, itself built here from Debian packages (cached by recipe).
Test images use their own project name and are removed at the end.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from testlib.docker_engine import DOCKER_PROBLEM, docker, needs_docker

REPO = Path(__file__).resolve().parents[1]
BUILD_RELEASE = REPO / "app" / "deploy" / "build_release"
BUILD_IMAGES = REPO / "molecule" / "images" / "build"
BASE_IMAGE = "scoring-test/worker-base:latest"
REGISTRY_SERVER = Path("/usr/bin/docker-registry")
PROJECT = "brtest"
REPOSITORY = f"drtools/{PROJECT}-worker"
FAILING_CHECK = 'python -c "raise SystemExit(3)"'
BUILD_TIMEOUT = 1800


def image_id(reference: str) -> str | None:
    result = docker("image", "inspect", "--format", "{{.Id}}", reference)
    return result.stdout.strip() if result.returncode == 0 else None


def repository_tags() -> set[str]:
    listing = docker("image", "ls", "--format", "{{.Tag}}", REPOSITORY)
    return {tag for tag in listing.stdout.split() if tag != "<none>"}


def commit_tag(output: str) -> str:
    """The commit tag build_release chose (HEAD may move while the tests run)."""
    match = re.search(r"\] version \S+, commit (\S+),", output)
    assert match, f"build_release did not report its commit:\n{output[-3000:]}"
    return match.group(1)


def build_release(
    *args: str, env: dict[str, str] | None = None, timeout: float = BUILD_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUILD_RELEASE), *args],
        cwd=REPO,
        env={**os.environ, "PROJECT_NAME": PROJECT, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# Loopback requests must not go through an HTTP proxy from the environment.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def registry_tags(registry: str) -> list[str]:
    url = f"http://{registry}/v2/{REPOSITORY}/tags/list"
    try:
        with _direct.open(url, timeout=10) as response:
            return json.load(response).get("tags") or []
    except urllib.error.HTTPError as err:
        if err.code == 404:  # the repository does not exist (yet)
            return []
        raise


@pytest.fixture(scope="module")
def base_image() -> str:
    if DOCKER_PROBLEM:
        pytest.skip(DOCKER_PROBLEM)
    result = subprocess.run(
        [str(BUILD_IMAGES), "worker-base"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"building {BASE_IMAGE} failed:\n{result.stderr[-3000:]}"
    return BASE_IMAGE


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """A registry on 127.0.0.1 with temporary storage, or None if the server is missing."""
    if not REGISTRY_SERVER.exists():
        yield None
        return
    root = tmp_path_factory.mktemp("registry")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    address = f"127.0.0.1:{port}"
    with (root / "registry.log").open("w") as output:
        server = subprocess.Popen(
            [str(REGISTRY_SERVER), "serve", str(config)], stdout=output, stderr=output
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with _direct.open(f"http://{address}/v2/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"docker-registry did not start: {(root / 'registry.log').read_text()}")
            time.sleep(0.2)
        yield address
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@dataclass
class Build:
    version: str
    commit: str
    result: subprocess.CompletedProcess[str]
    archive: Path
    registry: str | None


@pytest.fixture(scope="module")
def created_tags() -> Iterator[None]:
    """Removes every test image tag that appeared while this module ran."""
    if DOCKER_PROBLEM:
        yield
        return
    before = repository_tags()
    yield
    for tag in sorted(repository_tags() - before):
        docker("image", "rm", f"{REPOSITORY}:{tag}")


@pytest.fixture(scope="module")
def good_build(
    base_image: str,
    registry: str | None,
    created_tags: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Build:
    version = f"test-{uuid.uuid4().hex[:8]}"
    archive = tmp_path_factory.mktemp("release") / "worker.tar.gz"
    args = [version, "--base-image", base_image, "--save", str(archive)]
    if registry:
        args += ["--push", registry]
    result = build_release(*args)
    assert result.returncode == 0, f"build_release failed:\n{result.stderr[-5000:]}"
    return Build(version, commit_tag(result.stderr), result, archive, registry)


@pytest.fixture(scope="module")
def broken_build(good_build: Build, tmp_path_factory: pytest.TempPathFactory) -> Build:
    version = f"broken-{uuid.uuid4().hex[:8]}"
    archive = tmp_path_factory.mktemp("broken") / "worker.tar.gz"
    args = [version, "--base-image", BASE_IMAGE, "--save", str(archive)]
    if good_build.registry:
        args += ["--push", good_build.registry]
    result = build_release(*args, env={"BUILD_RELEASE_EXTRA_SMOKE": FAILING_CHECK})
    return Build(version, commit_tag(result.stderr), result, archive, good_build.registry)


# --- a good build -----------------------------------------------------------------------


@needs_docker
def test_good_build_is_tagged_with_version_and_commit(good_build: Build) -> None:
    by_version = image_id(f"{REPOSITORY}:{good_build.version}")
    assert by_version is not None
    assert image_id(f"{REPOSITORY}:{good_build.commit}") == by_version
    for check in ("imports", "luigi --help", "dask --version", "scoring smoke"):
        assert f"'{check}' passed" in good_build.result.stderr


@needs_docker
def test_image_metadata(good_build: Build) -> None:
    inspect = docker("image", "inspect", f"{REPOSITORY}:{good_build.version}")
    config = json.loads(inspect.stdout)[0]["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == good_build.version
    revision = labels["org.opencontainers.image.revision"]
    assert len(revision.removesuffix("-dirty")) == 40
    assert revision.startswith(good_build.commit.removesuffix("-dirty"))
    assert revision.endswith("-dirty") == good_build.commit.endswith("-dirty")
    assert labels["org.opencontainers.image.base.name"] == BASE_IMAGE
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/usr/local/bin/scoring-entrypoint"]
    assert config["Cmd"] == ["scoring", "--help"]


@needs_docker
def test_image_has_no_compiler_and_runs_under_tini(good_build: Build) -> None:
    script = "for c in gcc cc g++ make pip; do command -v $c && exit 1; done; cat /proc/1/cmdline"
    result = docker(
        "run", "--rm", "--network", "none", f"{REPOSITORY}:{good_build.version}", "sh", "-c", script
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split("\0")[0] == "/usr/bin/tini"


@needs_docker
def test_saved_archive_loads(good_build: Build) -> None:
    with gzip.open(good_build.archive) as archive:
        assert archive.read(512)  # a gzip stream holding a tar archive
    reference = f"{REPOSITORY}:{good_build.version}"
    original = image_id(reference)
    # Drop the version tag (the commit tag keeps the image) and get it back from the archive.
    assert docker("image", "rm", reference).returncode == 0
    loaded = docker("load", "--input", str(good_build.archive), timeout=600)
    assert loaded.returncode == 0, loaded.stderr
    assert f"Loaded image: {reference}" in loaded.stdout
    assert image_id(reference) == original


@needs_docker
def test_push_reaches_the_registry(good_build: Build) -> None:
    if good_build.registry is None:
        pytest.skip(f"{REGISTRY_SERVER} is absent (apt-get install docker-registry)")
    tags = registry_tags(good_build.registry)
    assert good_build.version in tags
    assert good_build.commit in tags


# --- a build whose smoke check fails ------------------------------------------------------


@needs_docker
def test_failing_smoke_check_exits_non_zero_and_names_it(broken_build: Build) -> None:
    assert broken_build.result.returncode != 0
    assert f"smoke check 'extra: {FAILING_CHECK}' failed" in broken_build.result.stderr
    assert "nothing was tagged, saved or pushed" in broken_build.result.stderr


@needs_docker
def test_failing_build_tags_and_saves_nothing(good_build: Build, broken_build: Build) -> None:
    assert image_id(f"{REPOSITORY}:{broken_build.version}") is None
    broken_commit = image_id(f"{REPOSITORY}:{broken_build.commit}")
    if broken_build.commit == good_build.commit:
        # The commit tag still names the good image.
        assert broken_commit == image_id(f"{REPOSITORY}:{good_build.commit}")
    else:  # someone committed between the two builds
        assert broken_commit is None
    assert not broken_build.archive.exists()
    assert not list(broken_build.archive.parent.iterdir())
    built = [
        line.rsplit(" ", 1)[-1]
        for line in broken_build.result.stderr.splitlines()
        if "] built image sha256:" in line
    ]
    assert built, "build_release did not report the image it built"
    assert image_id(built[0]) is None, "the untested image was left behind"


@needs_docker
def test_failing_build_pushes_nothing(broken_build: Build) -> None:
    if broken_build.registry is None:
        pytest.skip(f"{REGISTRY_SERVER} is absent (apt-get install docker-registry)")
    assert broken_build.version not in registry_tags(broken_build.registry)


# --- argument and environment errors (fast) -----------------------------------------------


@needs_docker
def test_unknown_base_image_is_a_clear_error() -> None:
    # A registry address on a closed port fails at once, without any network.
    result = build_release("x", "--base-image", "127.0.0.1:9/nothing/here:latest", timeout=300)
    assert result.returncode == 1
    assert "unknown base image '127.0.0.1:9/nothing/here:latest'" in result.stderr


def test_missing_docker_is_a_clear_error(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # The real interpreter, not a wrapper script that would need a shell on PATH.
    (bin_dir / "python3").symlink_to(Path(sys.executable).resolve())
    git_path = shutil.which("git")
    assert git_path, "git is needed to run this test"
    (bin_dir / "git").symlink_to(git_path)
    result = build_release("x", env={"PATH": str(bin_dir)}, timeout=60)
    assert result.returncode == 1
    assert "docker is not installed" in result.stderr
