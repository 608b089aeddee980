import itertools
import sys
from pathlib import Path

import pytest

from plano.core import manifest as mf
from tests import testrun

RUN = pytest.StashKey[testrun.Run]()


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden/ from the current rendering.")


def pytest_configure(config):
    """The controlling process owns the test run (xdist workers inherit its id) and
    first removes what earlier, killed runs left behind."""
    if hasattr(config, "workerinput"):
        return
    config.stash[RUN] = run = testrun.start()
    for line in testrun.sweep_abandoned(run):
        print(f"tests: removed what an earlier run left: {line}", file=sys.stderr)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    run = session.config.stash.get(RUN, None)
    if run is not None:
        removed = testrun.finish(run)
        print(f"\ntests: removed this run's {', '.join(removed) or 'nothing (none left)'}", file=sys.stderr)


def pytest_collection_modifyitems(items):
    """The longest integration modules first, by the seconds each declares
    (`pytestmark = pytest.mark.expected_seconds(N)`, measured on a 2-core machine), then
    the fast tests fill the gaps. scripts/test.sh runs modules at once with xdist's
    `--dist loadscope --no-loadscope-reorder`: each module whole on one worker (its
    module fixtures are one stack), in this order."""
    for item in items:
        if item.nodeid.startswith("tests/integration/"):
            item.add_marker(pytest.mark.engine)
    items.sort(key=lambda item: -expected_seconds(item))  # stable: a module keeps its order


def expected_seconds(item) -> float:
    marker = item.get_closest_marker("expected_seconds")
    return marker.args[0] if marker else 0


@pytest.fixture(scope="session")
def test_run() -> str:
    """The run's id, for the label `plano.test.run` of what a test makes outside compose."""
    return testrun.current()


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
