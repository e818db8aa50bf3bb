"""The check that lets a re-run skip pip: which pins a venv's dist-info does not satisfy."""

from __future__ import annotations

from testlib.plugins import filter_plugin

pins = filter_plugin("jupyterhub", "pins")
missing_pins = pins.jupyterhub_missing_pins

SITE = "/opt/env/lib/python3.13/site-packages"
LOCK = """\
# a comment
-r other.lock
Jinja2==3.1.6
importlib_metadata==10.2.0
zope.interface==8.0   # a trailing comment
"""
INSTALLED = [
    f"{SITE}/jinja2-3.1.6.dist-info",
    f"{SITE}/importlib_metadata-10.2.0.dist-info",
    f"{SITE}/zope_interface-8.0.dist-info",
    f"{SITE}/pip-25.3.dist-info",
]


def test_every_pin_installed_means_nothing_to_do():
    assert missing_pins(LOCK, INSTALLED) == []


def test_a_pin_at_another_version_is_missing():
    installed = [path.replace("jinja2-3.1.6", "jinja2-3.1.5") for path in INSTALLED]
    assert missing_pins(LOCK, installed) == ["Jinja2==3.1.6"]


def test_an_empty_or_absent_venv_misses_every_pin():
    assert missing_pins(LOCK, []) == [
        "Jinja2==3.1.6",
        "importlib_metadata==10.2.0",
        "zope.interface==8.0",
    ]


def test_several_files_are_read_together():
    assert missing_pins([LOCK, "click==8.5.1\n"], INSTALLED) == ["click==8.5.1"]


def test_what_is_not_a_plain_pin_always_runs_pip():
    text = "dask>=2026.1\nrequests[socks]==2.32.0\nfoo==1.0; python_version < '3.12'\n--hash x\n"
    assert missing_pins(text, INSTALLED) == [
        "dask>=2026.1",
        "requests[socks]==2.32.0",
        "foo==1.0; python_version < '3.12'",
        "--hash x",
    ]
