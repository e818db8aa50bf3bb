#!/usr/bin/env bash
# Check that requirements.lock installs from wheels alone on both interpreters we ship:
# CPython 3.11 (controller, tests) and CPython 3.13 manylinux x86_64 (the worker image).
#
# pip does not widen an explicit --platform to older manylinux tags, and some packages
# (matplotlib, kiwisolver, fonttools) publish only manylinux_2_17 wheels, which Debian 13's
# glibc accepts; so the older tags are listed explicitly.
set -euo pipefail
lock="$(dirname "$0")/../requirements.lock"
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64)
for version in 3.11 3.13; do
    dest="$(mktemp -d)"
    pip download --quiet --only-binary=:all: "${platforms[@]}" --python-version "$version" \
        --implementation cp -d "$dest" -r "$lock"
    echo "CPython $version: $(ls "$dest" | wc -l) wheels, no sdists"
    rm -rf "$dest"
done
