"""The dashboard's traffic page, its SVG charts and /api/traffic and /api/usage: the
numbers they show are `plano traffic`'s for the same log; the charts are images with no
script; `docker stats` is asked with an exact argv and parsed."""

from __future__ import annotations

import json
import re
import time

from plano.core import naming as n
from plano.engine import stats
from plano.ops import access
from tests.cli.test_dry_runs import infra as dry_infra  # noqa: F401 (a fixture)
from tests.unit.test_dashboard import OPERATOR, app, client, clocks, root, signed_in  # noqa: F401 (fixtures)
from tests.unit.test_traffic import line

STATUSES = [200] * 16 + [404, 404, 500, 502]


def write_log(infra_root) -> None:
    folder = infra_root / n.access_logs_dir("prod")
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    (folder / "access.log").write_text("".join(line(now - 200 + i, status=s, seconds=0.001 * (i + 1))
                                               for i, s in enumerate(STATUSES)))


def test_the_traffic_page_shows_the_logs_figures_under_its_charts(app, root):  # noqa: F811
    write_log(root)
    c, _ = signed_in(app, OPERATOR)
    page = c.get("/apps/app1/traffic")
    assert page.status_code == 200
    figures = dict(re.findall(r'data-figure="([^"]+)">([^<]+)<', page.text))
    assert figures == {"requests": "20", "4xx": "2 (10.0%)", "5xx": "2 (10.0%)", "p50": "10.0 ms", "p95": "19.0 ms"}
    assert re.findall(r'<img src="([^"]+)"', page.text) == [
        "/apps/app1/traffic/1h/requests.svg", "/apps/app1/traffic/1h/errors.svg", "/apps/app1/traffic/1h/latency.svg"]
    assert "<script" not in page.text
    assert c.get("/apps/app1/traffic?since=1d").status_code == 200
    assert c.get("/apps/app1/traffic?since=2w").status_code == 422
    assert c.get("/apps/nope/traffic").status_code == 404


def test_a_chart_is_an_svg_image_without_a_script(app, root):  # noqa: F811
    write_log(root)
    c, _ = signed_in(app, OPERATOR)
    for kind in ("requests", "errors", "latency"):
        got = c.get(f"/apps/app1/traffic/1d/{kind}.svg")
        assert got.status_code == 200 and got.headers["content-type"] == "image/svg+xml"
        assert got.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
        assert got.content.lstrip().startswith(b"<?xml") and b"<svg" in got.content and b"<script" not in got.content
    assert c.get("/apps/app1/traffic/1h/other.svg").status_code == 422


def test_the_api_gives_the_same_figures_as_plano_traffic_json(app, root):  # noqa: F811
    write_log(root)
    token = access.make_token(root, "ci")
    c = client(app)
    got = c.get("/api/traffic?app=app1", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200
    total = got.json()["apps"]["app1"]["total"]
    assert (total["requests"], total["status_4xx"], total["status_5xx"], total["p50_ms"], total["p95_ms"]) == (20, 2, 2, 10.0, 19.0)
    assert c.get("/api/traffic?app=nope", headers={"Authorization": f"Bearer {token}"}).status_code == 404
    assert c.get("/api/usage", headers={"Authorization": f"Bearer {token}"}).json() == []  # no container runs here
    schema = c.get("/api/openapi.json", headers={"Authorization": f"Bearer {token}"}).json()
    assert {"/api/traffic", "/api/usage"} <= set(schema["paths"])


def test_docker_stats_argv_and_parsing():
    assert stats.stats_argv("acme-nginx-1", "acme-app1-backend-1") == [
        "docker", "stats", "--no-stream", "--no-trunc", "--format", "{{json .}}", "acme-nginx-1", "acme-app1-backend-1"]
    out = "\n".join([
        json.dumps({"BlockIO": "0B / 0B", "CPUPerc": "1.52%", "Container": "c1", "ID": "c1", "MemPerc": "2.50%",
                    "MemUsage": "12.5MiB / 500MiB", "Name": "acme-nginx-1", "NetIO": "1kB / 2kB", "PIDs": "5"}),
        json.dumps({"CPUPerc": "--", "MemPerc": "--", "MemUsage": "0B / 0B", "Name": "acme-certbot-1"}),
        "not json",
    ])
    assert stats.parse(out) == [
        stats.Usage("acme-nginx-1", 1.52, 13107200, 524288000, 2.5),
        stats.Usage("acme-certbot-1", 0.0, 0, 0, 0.0),
    ]
    assert (stats.size("1.9GiB"), stats.size("2kB"), stats.size("512B")) == (int(1.9 * 1024**3), 2000, 512)
