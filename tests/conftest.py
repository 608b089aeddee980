import itertools
from pathlib import Path

import pytest

from plano import manifest as mf


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden/ from the current rendering.")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def fake_secrets():
    """Deterministic stand-in for the CSPRNG, so golden trees are stable."""
    counter = itertools.count(1)
    return lambda: f"test-secret-{next(counter):02d}-" + "x" * 32


def manifest_text(apps: int = 0, extra: str = "") -> str:
    text = mf.new_document("acme", "registry.example.com/acme", "ops@example.com")
    if apps:
        text = text.replace("apps: {}\n", "apps:\n" + "".join(
            f"  app{i}:\n    domains: [app{i}.example.com, www.app{i}.example.com]\n" for i in range(1, apps + 1)
        ))
    return text + extra


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path
