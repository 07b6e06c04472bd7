# SPDX-License-Identifier: Apache-2.0
"""Runs every cmocka unit-test binary meson built, one pytest test each, so one runner reports
the whole suite: once as built (build/), once under AddressSanitizer and
UndefinedBehaviorSanitizer (build-asan/, scripts/build), where any report fails the test."""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILDS = {"": pathlib.Path(os.environ.get("KILN_BUILD", ROOT / "build")),
          "asan/": pathlib.Path(os.environ.get("KILN_ASAN_BUILD", ROOT / "build-asan"))}
SANITIZERS = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=66",
              "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=67"}


def unit_tests(build):
    out = subprocess.run(["meson", "introspect", str(build), "--tests"], capture_output=True,
                         check=True, text=True).stdout
    return [t for t in json.loads(out) if any(s.endswith("unit") for s in t["suite"])]


TESTS = [(prefix, t) for prefix, build in BUILDS.items() for t in unit_tests(build)]


def test_unit_tests_were_built():
    for prefix in BUILDS:
        assert len([t for p, t in TESTS if p == prefix]) >= 7, (prefix, TESTS)


@pytest.mark.parametrize("prefix,test", TESTS, ids=[p + t["name"] for p, t in TESTS])
def test_cmocka(prefix, test):
    env = dict(os.environ, **(test.get("env") or {}), **(SANITIZERS if prefix else {}))
    p = subprocess.run(test["cmd"], cwd=test.get("workdir") or ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
