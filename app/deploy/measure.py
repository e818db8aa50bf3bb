"""Size and build-time numbers of the worker image: the logic behind `app/deploy/measure_image`.

    app/deploy/measure_image IMAGE            sizes of an existing image
    app/deploy/measure_image --builds [...]   also time a cold and a warm build_release

Sizes: the image, its layer count, its base image (from the OCI base-name label) and the venv
(/opt/scoring, i.e. the installed wheels); the target is image <= (base + venv) * 1.10.
Cold build: an empty wheel cache, no pip HTTP cache and `docker build --no-cache`; warm build:
the same again right after, with both caches. Build times include the smoke checks; the
time to the built image and each phase are printed too. The measurement builds are tagged
drtools/measure-worker and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BUILD_RELEASE = HERE / "build_release"
MB = 1_000_000
OVERHEAD_TARGET = 0.10
MEASURE_PROJECT = "measure"


def docker_json(*args: str) -> Any:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise SystemExit(f"measure_image: docker {' '.join(args)} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def venv_bytes(image: str) -> int:
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "du", image,
         "-sb", "/opt/scoring"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"measure_image: du in {image} failed: {result.stderr.strip()}")
    return int(result.stdout.split()[0])


def sizes(image: str) -> dict[str, object]:
    info = docker_json("image", "inspect", image)[0]
    base_name = (info["Config"]["Labels"] or {}).get("org.opencontainers.image.base.name")
    base = docker_json("image", "inspect", base_name)[0] if base_name else None
    venv = venv_bytes(image)
    numbers: dict[str, Any] = {
        "image": image,
        "image_mb": round(info["Size"] / MB, 1),
        "layers": len(info["RootFS"]["Layers"]),
        "base_image": base_name,
        "base_mb": round(base["Size"] / MB, 1) if base else None,
        "base_layers": len(base["RootFS"]["Layers"]) if base else None,
        "venv_mb": round(venv / MB, 1),
    }
    if base:
        expected = base["Size"] + venv
        overhead = info["Size"] - expected
        numbers["overhead_mb"] = round(overhead / MB, 1)
        numbers["overhead_percent"] = round(100 * overhead / expected, 1)
        numbers["target_met"] = info["Size"] <= expected * (1 + OVERHEAD_TARGET)
    return numbers


def timed_build(version: str, base_image: str, cold: bool, cache: Path) -> dict[str, object]:
    argv = [str(BUILD_RELEASE), version, "--base-image", base_image, "--wheel-cache", str(cache)]
    env = dict(os.environ)
    if cold:
        argv.append("--no-docker-cache")
        env["PIP_NO_CACHE_DIR"] = "1"
    started = time.monotonic()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    total = time.monotonic() - started
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-4000:])
        raise SystemExit(f"measure_image: build_release {version} failed")
    built = re.search(r"\[build_release\s+(\d+)s\] built image (sha256:\w+)", result.stderr)
    steps = {
        int(number): int(seconds)
        for seconds, number in re.findall(r"\[build_release\s+(\d+)s\] step (\d)/6", result.stderr)
    }
    phases = {"wheels_s": (2, 3), "docker_build_s": (3, 4), "smoke_s": (4, 5)}
    return {
        "total_s": round(total),
        "to_image_s": int(built.group(1)) if built else None,
        **{
            name: steps[end] - steps[start] if {start, end} <= steps.keys() else None
            for name, (start, end) in phases.items()
        },
        "image_id": built.group(2) if built else None,
    }


def repository_tags(repository: str) -> set[str]:
    listing = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Tag}}", repository],
        capture_output=True,
        text=True,
        check=False,
    )
    return set(listing.stdout.split()) - {"<none>"}


def measure_builds(base_image: str) -> dict[str, object]:
    # Measurement images get their own repository; every tag they add is removed at the end.
    os.environ["PROJECT_NAME"] = MEASURE_PROJECT
    repository = f"drtools/{MEASURE_PROJECT}-worker"
    before = repository_tags(repository)
    results: dict[str, object] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="measure-wheels-") as cache:
            for kind in ("cold", "warm"):
                print(f"timing a {kind} build ...", file=sys.stderr, flush=True)
                results[f"{kind}_build"] = timed_build(
                    f"{kind}-{os.getpid()}", base_image, kind == "cold", Path(cache)
                )
        results.update(sizes(f"{repository}:warm-{os.getpid()}"))
    finally:
        for tag in sorted(repository_tags(repository) - before):
            subprocess.run(
                ["docker", "image", "rm", f"{repository}:{tag}"], capture_output=True, check=False
            )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="measure_image", description=__doc__.split("\n")[0])
    parser.add_argument("image", nargs="?", help="image to measure (not needed with --builds)")
    parser.add_argument("--builds", action="store_true", help="time a cold and a warm build")
    parser.add_argument("--base-image", default="scoring-test/worker-base:latest")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if not args.builds and not args.image:
        parser.error("give an IMAGE or --builds")
    numbers = measure_builds(args.base_image) if args.builds else sizes(args.image)
    if args.json:
        print(json.dumps(numbers))
    else:
        for key, value in numbers.items():
            print(f"{key:18} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
