"""Build, test and ship the worker image: the logic behind `app/deploy/build_release`.

Steps, each announced on stderr:
  1. check docker, the git tree and the base image (it must run CPython 3.13);
  2. collect wheels: every pin of app/requirements.lock for CPython 3.13 manylinux x86_64
     (from a cache under .cache/wheels/, downloaded with `pip download` only when a pin is
     missing) plus pip's own wheel, and build the scoring package's wheel from the tree;
  3. `docker build` docker/Dockerfile from a temporary context holding only those wheels;
  4. run the smoke checks in the new image (no network); any failure stops here, before
     anything is tagged, saved or pushed, and the untagged image is removed;
  5. tag `drtools/<project>-worker:<version>` and `:<commit>`;
  6. optionally `docker save` to an archive and push to a registry.

Only the standard library is used; pip comes from the running interpreter or the
repository's .venv.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app"
LOCK = APP / "requirements.lock"
DOCKERFILE = REPO / "docker" / "Dockerfile"
DEFAULT_BASE_IMAGE = "python:3.13-slim-trixie"
DEFAULT_PROJECT = "is24de"
DEFAULT_WHEEL_CACHE = REPO / ".cache" / "wheels"
PYTHON_VERSION = "3.13"
# pip is not in the lock (it is not a runtime dependency): the image's build stage runs
# this release straight from its wheel. Same version as the controller venv.
PIP_VERSION = "25.3"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
IMAGE_UID = 10001
EXTRA_SMOKE_ENV = "BUILD_RELEASE_EXTRA_SMOKE"
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

# Starts the three long-running services the way the stack runs them (on loopback inside
# one container), checks that each answers, then stops them.
SERVICES_CHECK = r"""
import json, os, signal, subprocess, sys, time, urllib.request
from distributed import Client

procs = [
    subprocess.Popen(["scoring-luigid", "--port", "8082", "--address", "127.0.0.1",
                      "--state-path", "/tmp/luigi-state.pickle", "--logdir", "/tmp"]),
    subprocess.Popen(["dask", "scheduler", "--host", "127.0.0.1", "--port", "8786",
                      "--dashboard-address", "127.0.0.1:8787"]),
    subprocess.Popen(["dask", "worker", "tcp://127.0.0.1:8786", "--nworkers", "1",
                      "--nthreads", "1", "--host", "127.0.0.1",
                      "--dashboard-address", "127.0.0.1:8789"]),
]
try:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8082/api/task_list", timeout=2) as r:
                json.load(r)
            break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit("luigid did not answer on 127.0.0.1:8082 within 60 s")
            time.sleep(0.5)
    with Client("tcp://127.0.0.1:8786", timeout=60) as client:
        client.wait_for_workers(1, timeout=60)
        assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
    print("luigid, dask scheduler and dask worker answered")
finally:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
"""


class ReleaseError(Exception):
    """An expected failure: printed as one line, exit code 1."""


@dataclass(frozen=True)
class Check:
    name: str
    argv: tuple[str, ...]
    timeout: int = 120
    expect_stdout: str | None = None


STARTED = time.monotonic()


def log(message: str) -> None:
    elapsed = time.monotonic() - STARTED
    print(f"[build_release {elapsed:4.0f}s] {message}", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str], *, capture: bool = True, timeout: float | None = None, **kwargs
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=capture, text=True, timeout=timeout, check=False, **kwargs
    )


def git(*args: str) -> str:
    result = run(["git", "-C", str(REPO), *args])
    if result.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


# --- preflight --------------------------------------------------------------------------


def check_docker() -> None:
    if shutil.which("docker") is None:
        raise ReleaseError("docker is not installed (no `docker` on PATH)")
    result = run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=60)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ReleaseError(
            "the Docker engine does not answer (`docker info` failed): "
            + (detail[-1] if detail else "no output")
        )
    log(f"docker engine {result.stdout.strip()}")


def image_id(reference: str) -> str | None:
    result = run(["docker", "image", "inspect", "--format", "{{.Id}}", reference])
    return result.stdout.strip() if result.returncode == 0 else None


def check_base_image(base: str) -> None:
    if image_id(base) is None:
        log(f"base image {base} is not present locally: trying docker pull")
        try:
            pulled = run(["docker", "pull", base], timeout=300)
        except subprocess.TimeoutExpired:
            pulled = None
        if pulled is None or pulled.returncode != 0:
            raise ReleaseError(
                f"unknown base image {base!r}: not present locally and `docker pull` failed. "
                "Without a registry, build the Debian-based one with "
                "`molecule/images/build worker-base` and pass "
                "--base-image scoring-test/worker-base:latest"
            )
    probe = run(
        [
            "docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", base, "-c",
            "import sys, venv; print('%d.%d' % sys.version_info[:2])",
        ],
        timeout=120,
    )  # fmt: skip
    version = probe.stdout.strip()
    if probe.returncode != 0:
        raise ReleaseError(
            f"base image {base} has no usable `python3` with the venv module: "
            f"{(probe.stderr or probe.stdout).strip()[-300:]}"
        )
    if version != PYTHON_VERSION:
        raise ReleaseError(
            f"base image {base} runs Python {version}; the wheelhouse is for {PYTHON_VERSION}"
        )
    log(f"base image {base}: Python {version}")


# --- wheels -----------------------------------------------------------------------------


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK) -> list[tuple[str, str]]:
    pins = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)", line)
        if match is None:
            raise ReleaseError(f"{path.name}: not an exact pin: {line!r}")
        pins.append((match.group(1), match.group(3)))
    return pins


def find_wheel(cache: Path, name: str, version: str) -> Path | None:
    """The cached wheel of exactly name==version, or None."""
    wanted = (canonical(name), version.lower())
    found = []
    for wheel in cache.glob("*.whl"):
        parts = wheel.name[: -len(".whl")].split("-")
        if len(parts) in (5, 6) and (canonical(parts[0]), parts[1].lower()) == wanted:
            found.append(wheel)
    return sorted(found)[-1] if found else None


def pip_command() -> list[str]:
    candidates = [sys.executable, str(REPO / ".venv" / "bin" / "python")]
    for python in candidates:
        if Path(python).exists() and run([python, "-m", "pip", "--version"]).returncode == 0:
            return [python, "-m", "pip"]
    raise ReleaseError("pip is missing: run `make venv` (or install python3-pip) first")


def collect_dependency_wheels(cache: Path, pins: list[tuple[str, str]]) -> list[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [*pins, ("pip", PIP_VERSION)]
    missing = [f"{n}=={v}" for n, v in wanted if find_wheel(cache, n, v) is None]
    if missing:
        log(f"downloading {len(missing)} of {len(wanted)} wheels into {display(cache)}")
        platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
        argv = [
            *pip_command(), "download", "--quiet", "--disable-pip-version-check",
            "--only-binary=:all:", *platforms, "--python-version", PYTHON_VERSION,
            "--implementation", "cp", "--no-deps", "-d", str(cache), *missing,
        ]  # fmt: skip
        # --no-deps: the lock is complete; the image's install resolves it again and fails
        # if anything is missing.
        result = run(argv, capture=False)
        if result.returncode != 0:
            raise ReleaseError("pip download failed (see above): is PyPI reachable?")
    else:
        log(f"all {len(wanted)} wheels found in {display(cache)}: nothing to download")
    wheels = []
    for name, version in wanted:
        wheel = find_wheel(cache, name, version)
        if wheel is None:
            raise ReleaseError(f"no wheel for {name}=={version} after download")
        wheels.append(wheel)
    return wheels


APP_EXTRAS = ("README.md", "LICENSE", "MANIFEST.in", "setup.cfg")


def app_sources() -> list[Path]:
    """The files the scoring wheel is built from, relative to app/."""
    files = [Path("pyproject.toml")]
    files += [Path(name) for name in APP_EXTRAS if (APP / name).is_file()]
    files += sorted(
        path.relative_to(APP)
        for path in (APP / "scoring").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    return files


def build_app_wheel(cache_root: Path, source_date_epoch: str) -> Path:
    """The scoring wheel, built from a clean copy of app/ (nothing is written into app/).

    Cached under cache_root by a hash of its sources and timestamp, so a rebuild of unchanged
    code reuses the very same file (and Docker's cache for its layer).
    """
    sources = app_sources()
    digest = hashlib.sha256(source_date_epoch.encode())
    for relative in sources:
        digest.update(f"\0{relative}\0".encode())
        digest.update((APP / relative).read_bytes())
    cached = cache_root / digest.hexdigest()[:16]
    wheels = sorted(cached.glob("*.whl"))
    if len(wheels) == 1:
        log(f"scoring wheel unchanged: {wheels[0].name} from {display(cached)}")
        return wheels[0]
    with tempfile.TemporaryDirectory(prefix="scoring-src-") as tmp:
        src, out = Path(tmp) / "app", Path(tmp) / "wheel"
        for relative in sources:
            (src / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(APP / relative, src / relative)
        argv = [
            *pip_command(), "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
            "-w", str(out), str(src),
        ]  # fmt: skip
        env = {**os.environ, "SOURCE_DATE_EPOCH": source_date_epoch}
        result = run(argv, env=env)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            raise ReleaseError("building the scoring wheel failed (see above)")
        wheels = sorted(out.glob("*.whl"))
        if len(wheels) != 1:
            raise ReleaseError(f"expected one scoring wheel, found {[w.name for w in wheels]}")
        shutil.rmtree(cache_root, ignore_errors=True)  # keep only the newest build
        cached.mkdir(parents=True)
        shutil.copy2(wheels[0], cached / wheels[0].name)
    log(f"built {wheels[0].name}")
    return cached / wheels[0].name


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# --- image ------------------------------------------------------------------------------


def docker_build(context: Path, base: str, labels: dict[str, str], use_cache: bool) -> str:
    iidfile = context.parent / "iid"
    argv = [
        "docker", "build", "--file", str(context / "Dockerfile"), "--iidfile", str(iidfile),
        "--build-arg", f"BASE_IMAGE={base}",
    ]  # fmt: skip
    for key, value in labels.items():
        argv += ["--build-arg", f"{key}={value}"]
    if not use_cache:
        argv.append("--no-cache")
    argv.append(str(context))
    env = dict(os.environ)
    result = run(argv, capture=False, env=env)
    if result.returncode != 0 or not iidfile.exists():
        raise ReleaseError("docker build failed (see above)")
    return iidfile.read_text().strip()


def smoke_checks(extra: Sequence[str]) -> list[Check]:
    """The checks in order: the caller's extra checks first (fail fast), the slowest last."""
    imports = "import scoring, dask, distributed, luigi, pandas, pyarrow, sklearn, matplotlib"
    checks = [Check(f"extra: {cmd}", ("sh", "-c", cmd)) for cmd in extra]
    checks += [
        Check(f"runs as uid {IMAGE_UID}", ("id", "-u"), expect_stdout=str(IMAGE_UID)),
        Check("imports", ("python", "-c", imports)),
        Check("luigi --help", ("luigi", "--help")),
        Check("luigid --help", ("luigid", "--help")),
        Check("scoring-luigid --help", ("scoring-luigid", "--help")),
        Check("dask --version", ("dask", "--version")),
        Check("dask scheduler --help", ("dask", "scheduler", "--help")),
        Check("dask worker --help", ("dask", "worker", "--help")),
        Check("scoring --help", ("scoring", "--help")),
        Check("services answer", ("python", "-c", SERVICES_CHECK), timeout=180),
        Check("scoring smoke", ("scoring", "smoke"), timeout=900),
    ]
    return checks


def run_smoke_checks(image: str, checks: Sequence[Check]) -> str | None:
    """Runs every check in a fresh container; returns the name of the first failing one."""
    for number, check in enumerate(checks, 1):
        started = time.monotonic()
        argv = ["docker", "run", "--rm", "--network", "none", image, *check.argv]
        try:
            result = run(argv, timeout=check.timeout)
        except subprocess.TimeoutExpired:
            log(f"smoke check {number}/{len(checks)} '{check.name}' timed out ({check.timeout} s)")
            return check.name
        seconds = time.monotonic() - started
        ok = result.returncode == 0 and (
            check.expect_stdout is None or result.stdout.strip() == check.expect_stdout
        )
        if not ok:
            output = (result.stdout + result.stderr).strip().splitlines()[-25:]
            for line in output:
                print(f"    | {line}", file=sys.stderr)
            log(
                f"smoke check {number}/{len(checks)} '{check.name}' FAILED "
                f"(exit {result.returncode}, {seconds:.1f} s)"
            )
            return check.name
        log(f"smoke check {number}/{len(checks)} '{check.name}' passed ({seconds:.1f} s)")
    return None


def remove_if_untagged(image: str) -> None:
    tags = run(["docker", "image", "inspect", "--format", "{{json .RepoTags}}", image])
    if tags.returncode == 0 and json.loads(tags.stdout or "[]") == []:
        run(["docker", "image", "rm", image])
        log(f"removed the untagged image {image[:19]}")


def save_archive(path: Path, references: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    compress = path.suffix in (".gz", ".tgz")
    try:
        with (
            subprocess.Popen(["docker", "save", *references], stdout=subprocess.PIPE) as saver,
            gzip.open(partial, "wb", compresslevel=1) if compress else partial.open("wb") as out,
        ):
            shutil.copyfileobj(saver.stdout, out, 1 << 20)
        if saver.returncode != 0:
            raise ReleaseError(f"docker save failed (exit {saver.returncode})")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def push(registry: str, repository: str, tags: Sequence[str]) -> list[str]:
    pushed = []
    for tag in tags:
        remote = f"{registry.rstrip('/')}/{repository}:{tag}"
        run(["docker", "tag", f"{repository}:{tag}", remote])
        log(f"pushing {remote}")
        result = run(["docker", "push", remote], timeout=1800)
        run(["docker", "image", "rm", remote])  # the local alias only; the image stays
        if result.returncode != 0:
            raise ReleaseError(
                f"docker push {remote} failed: {(result.stderr or result.stdout).strip()[-400:]}"
            )
        pushed.append(remote)
    return pushed


# --- main -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_release",
        description="Build the worker image from wheels, smoke-test it, then tag, save, push.",
    )
    parser.add_argument(
        "version", nargs="?", help="image tag (default: git describe --tags --always --dirty)"
    )
    parser.add_argument("--push", metavar="REGISTRY", help="push to REGISTRY (host[:port])")
    parser.add_argument("--save", metavar="PATH", type=Path, help="write a docker save archive")
    parser.add_argument(
        "--base-image",
        default=os.environ.get("BUILD_RELEASE_BASE_IMAGE", DEFAULT_BASE_IMAGE),
        help=f"image to build on (default {DEFAULT_BASE_IMAGE}; without a registry: "
        "scoring-test/worker-base:latest)",
    )
    parser.add_argument(
        "--smoke-command",
        action="append",
        default=[],
        metavar="CMD",
        help=f"an additional smoke check run with `sh -c` in the image (repeatable; also "
        f"${EXTRA_SMOKE_ENV})",
    )
    parser.add_argument(
        "--wheel-cache", type=Path, default=DEFAULT_WHEEL_CACHE, help="downloaded wheels"
    )
    parser.add_argument(
        "--no-docker-cache", action="store_true", help="pass --no-cache to docker build"
    )
    return parser.parse_args(argv)


def build_image(args: argparse.Namespace, version: str, revision: str) -> str:
    """Steps 2 and 3: wheels, a temporary context, docker build. Returns the image id."""
    with tempfile.TemporaryDirectory(prefix="build-release-") as tmp:
        context = Path(tmp) / "context"
        (context / "wheels" / "deps").mkdir(parents=True)
        (context / "wheels" / "app").mkdir(parents=True)

        log(f"step 2/6: collecting wheels for CPython {PYTHON_VERSION}")
        cache = args.wheel_cache / f"cp{PYTHON_VERSION.replace('.', '')}-manylinux-x86_64"
        for wheel in collect_dependency_wheels(cache, read_lock()):
            link_or_copy(wheel, context / "wheels" / "deps" / wheel.name)
        epoch = git("log", "-1", "--format=%ct")
        app_wheel = build_app_wheel(args.wheel_cache / "scoring", epoch)
        link_or_copy(app_wheel, context / "wheels" / "app" / app_wheel.name)
        shutil.copy2(LOCK, context / "requirements.lock")
        shutil.copy2(DOCKERFILE, context / "Dockerfile")

        log(f"step 3/6: docker build on {args.base_image}")
        labels = {
            "VERSION": version,
            "REVISION": revision,
            "CREATED": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return docker_build(context, args.base_image, labels, use_cache=not args.no_docker_cache)


def deliver(args: argparse.Namespace, repository: str, tags: Sequence[str]) -> None:
    """Step 6: the archive and the registry."""
    log("step 6/6: delivery")
    references = [f"{repository}:{tag}" for tag in tags]
    if args.save:
        log(f"saving {' '.join(references)} to {args.save}")
        save_archive(args.save, references)
        log(f"wrote {args.save} ({args.save.stat().st_size / 1e6:.0f} MB)")
    if args.push:
        for remote in push(args.push, repository, tags):
            log(f"pushed {remote}")
    if not args.save and not args.push:
        log("nothing to deliver (no --save, no --push)")


def release(args: argparse.Namespace) -> int:
    started = time.monotonic()
    project = os.environ.get("PROJECT_NAME") or DEFAULT_PROJECT
    repository = f"drtools/{project}-worker"
    extra = list(args.smoke_command)
    if os.environ.get(EXTRA_SMOKE_ENV):
        extra.append(os.environ[EXTRA_SMOKE_ENV])

    log("step 1/6: checking docker, the git tree and the base image")
    check_docker()
    version = args.version or git("describe", "--tags", "--always", "--dirty")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    suffix = "-dirty" if dirty else ""
    commit = git("rev-parse", "--short=12", "HEAD") + suffix
    for tag in (version, commit):
        if not TAG_RE.match(tag):
            raise ReleaseError(f"{tag!r} is not a valid image tag ([A-Za-z0-9_.-], max 128)")
    if dirty:
        log("WARNING: the working tree has uncommitted changes: the image is built from them")
    log(f"version {version}, commit {commit}, image {repository}")
    check_base_image(args.base_image)

    image = build_image(args, version, git("rev-parse", "HEAD") + suffix)
    log(f"built image {image}")

    checks = smoke_checks(extra)
    log(f"step 4/6: {len(checks)} smoke checks in the image (no network)")
    failed = run_smoke_checks(image, checks)
    if failed is not None:
        remove_if_untagged(image)
        raise ReleaseError(f"smoke check '{failed}' failed: nothing was tagged, saved or pushed")

    log("step 5/6: tagging")
    for tag in (version, commit):
        if run(["docker", "tag", image, f"{repository}:{tag}"]).returncode != 0:
            raise ReleaseError(f"docker tag {repository}:{tag} failed")
        log(f"tagged {repository}:{tag}")

    deliver(args, repository, [version, commit])
    log(f"done in {time.monotonic() - started:.0f} s: {repository}:{version}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return release(args)
    except ReleaseError as err:
        log(f"ERROR: {err}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
