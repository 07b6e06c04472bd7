"""Runs every cmocka unit-test binary meson built, one pytest test each, so one runner reports
the whole suite."""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("KILN_BUILD", ROOT / "build"))


def unit_tests():
    out = subprocess.run(["meson", "introspect", str(BUILD), "--tests"], capture_output=True,
                         check=True, text=True).stdout
    return [t for t in json.loads(out) if any(s.endswith("unit") for s in t["suite"])]


TESTS = unit_tests()


def test_unit_tests_were_built():
    assert len(TESTS) >= 7, [t["name"] for t in TESTS]


@pytest.mark.parametrize("test", TESTS, ids=[t["name"] for t in TESTS])
def test_cmocka(test):
    env = dict(os.environ, **(test.get("env") or {}))
    p = subprocess.run(test["cmd"], cwd=test.get("workdir") or ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
