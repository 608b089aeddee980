"""The demo backend's own tests (node:test), run by the suite: its WebSocket framing,
upload names and bounds are what the deploy tests lean on."""

import subprocess
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[2] / "src/plano/templates/demo-app/backend"


def test_the_demo_backends_node_tests_pass():
    proc = subprocess.run(["node", "--test", "server.test.js"], cwd=BACKEND, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout and "# pass 6" in proc.stdout
