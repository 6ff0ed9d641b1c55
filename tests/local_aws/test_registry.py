"""Every gap in the registry has its test here, and says where AWS documents it."""

from __future__ import annotations

import importlib
import pkgutil

import tests.local_aws
from local_aws.gaps import GAPS


def _test_names() -> set[str]:
    names = set()
    for module in pkgutil.iter_modules(tests.local_aws.__path__):
        if module.name.startswith("test_"):
            loaded = importlib.import_module(f"tests.local_aws.{module.name}")
            names.update(name for name in vars(loaded) if name.startswith("test_"))
    return names


def test_every_gap_has_a_test() -> None:
    tests = _test_names()
    missing = [gap.id for gap in GAPS if "test_" + gap.id.replace("-", "_") not in tests]
    assert missing == []


def test_every_gap_is_documented_once() -> None:
    assert len({gap.id for gap in GAPS}) == len(GAPS)
    assert all(gap.docs.startswith("https://docs.aws.amazon.com/") and gap.aws for gap in GAPS)
