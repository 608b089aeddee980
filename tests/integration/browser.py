"""A real browser for the dashboard's tests: Debian's chromium (scripts/harness/setup.sh
installs it), driven by Playwright for Python; and `plano dashboard` served for a test."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.net import free_ports, wait_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@contextmanager
def chromium(*extra: str) -> Iterator:
    """A new browser (its own profile: no cookie of another test), with `extra` flags."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: run scripts/harness/setup.sh (it installs Debian's chromium)"
    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra])
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page, base: str, user: str, password: str) -> None:
    """Open the dashboard at `base`: sent to the sign-in form, signed in, on the overview."""
    page.goto(f"{base}/")
    assert page.url == f"{base}/login"
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def add_user(infra: Path, user: str, password: str, role: str) -> None:
    done = subprocess.run([sys.executable, "-m", "plano.cli", "dashboard", "passwd", user, "--role", role], cwd=infra,
                          input=password + "\n", capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as got:
            return got.status == 200
    except OSError:
        return False


@contextmanager
def dashboard(infra: Path, log: Path) -> Iterator[str]:
    """`plano dashboard` on a free port for the test's lifetime; its base URL."""
    [port] = free_ports(1)
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "plano.cli", "dashboard", "--port", str(port)], cwd=infra,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is None and answers(f"{base}/login"), f"plano dashboard did not answer: {log}", 30, 0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
