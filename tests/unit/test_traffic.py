"""Traffic figures from nginx's JSON access log: exact figures from a written log, the
tail reading of big and rotated logs, `plano traffic`, and a property (the buckets
add up to the lines in the window)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from plano.cli.main import main
from plano.core import naming as n
from plano.core import traffic as t
from plano.ops import traffic
from tests.cli.test_dry_runs import infra  # noqa: F401 (a fixture)
from tests.scripted import ScriptedRunner, session

NOW = 1_800_000_030.0  # 30 s into a minute (and into a 15-minute bucket)


def line(when: float, app: str = "app1", status: int = 200, seconds: float = 0.004) -> str:
    """As nginx.conf's plano_json writes it."""
    return (f'{{"time":{when:.3f},"app":"{app}","status":{status},"request_time":{seconds:.3f},'
            f'"upstream_response_time":"{seconds:.3f}","bytes":512,"method":"GET"}}\n')


LOG = [
    line(NOW - 4000),  # before the hour
    line(1_799_999_000, "app2", 200, 0.005),
    line(1_799_999_970, seconds=0.020),
    line(1_800_000_020, seconds=0.010),
    line(1_800_000_021, status=404, seconds=0.002),
    '{"time":1800000021.5,"app":"app1","sta',  # cut short
    "\n",
    line(1_800_000_022, status=502, seconds=0.100),
    line(NOW + 5),  # after now (a clock ahead): left out
]


def test_a_line_of_the_rendered_format_parses():
    assert t.parse('{"time":1733400000.123,"app":"app1","status":200,"request_time":0.004,'
                   '"upstream_response_time":"-","bytes":0,"method":"GET"}') == t.Hit(1733400000.123, "app1", 200, 0.004)
    assert t.parse('{"time":17') is None
    assert t.parse("127.0.0.1 - - [05/Dec/2026] \"GET /\" 200") is None


def test_windows_are_aligned_to_the_clock():
    assert t.WINDOWS["1h"].bounds(NOW) == (1_799_996_460, 1_800_000_060)
    assert t.WINDOWS["1d"].bounds(NOW) == (1_799_914_500, 1_800_000_900)
    assert (t.WINDOWS["1h"].buckets, t.WINDOWS["1d"].buckets) == (60, 96)


def test_nearest_rank_percentiles():
    assert t.percentile([], 0.5) is None
    assert t.percentile([7.0], 0.95) == 7.0
    values = [float(v) for v in range(1, 101)]
    assert (t.percentile(values, 0.5), t.percentile(values, 0.95)) == (50.0, 95.0)
    assert (t.percentile([2.0, 10.0, 100.0], 0.5), t.percentile([2.0, 10.0, 100.0], 0.95)) == (10.0, 100.0)


def hour_report(root: Path) -> traffic.Report:
    folder = root / n.access_logs_dir("prod")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "access.log").write_text("".join(LOG))
    return traffic.collect(session(root, ScriptedRunner()), "1h", now=NOW)


def test_the_hour_of_a_written_log(infra):  # noqa: F811
    report = hour_report(infra)
    assert (report.log, report.lines, report.oldest) == ("data/logs/nginx/access.log", 5, NOW - 4000)
    app1 = report.apps["app1"]
    assert app1.total == t.Figures(start=1_799_996_460, seconds=3600, requests=4, per_second=0.001, status_4xx=1,
                                   status_5xx=1, p50_ms=10.0, p95_ms=100.0)
    assert len(app1.buckets) == 60
    assert app1.buckets[-1] == t.Figures(start=1_800_000_000, seconds=60, requests=3, per_second=0.1, status_4xx=1,
                                         status_5xx=1, p50_ms=10.0, p95_ms=100.0)
    assert app1.buckets[-2] == t.Figures(start=1_799_999_940, seconds=60, requests=1, per_second=0.017, status_4xx=0,
                                         status_5xx=0, p50_ms=20.0, p95_ms=20.0)
    assert sum(b.requests for b in app1.buckets[:-2]) == 0
    app2 = report.apps["app2"]  # not in plano.yml, but in the log: shown too
    assert [i for i, b in enumerate(app2.buckets) if b.requests] == [42]
    assert app2.buckets[42].p95_ms == 5.0
    public = traffic.public(report)
    assert public["apps"]["app1"]["total"]["share_5xx"] == 0.25
    assert public["apps"]["app1"]["buckets"][-1]["requests"] == 3


def test_an_app_of_plano_yml_without_requests_has_empty_buckets():
    report = t.summarize([], t.WINDOWS["1d"], NOW, ["app1"])
    assert list(report) == ["app1"]
    assert report["app1"].total.requests == 0 and report["app1"].total.p50_ms is None
    assert len(report["app1"].buckets) == 96


def write_lines(path: Path, times: list[float]) -> None:
    path.write_text("".join(line(when) for when in times))


def test_a_big_log_is_read_from_its_tail_only(tmp_path):
    # Two days, a request every 5 s: ~34,560 lines, ~5 MB; the hour needs ~720 of them.
    times = [NOW - 2 * 86400 + 5 * i for i in range(2 * 86400 // 5)]
    log = tmp_path / "access.log"
    write_lines(log, times)
    since = NOW - 3600
    lines, whole = traffic.tail(log, since)
    assert not whole
    assert len(lines) < 3000
    hits = [t.parse(raw) for raw in lines]
    assert all(hit is not None for hit in hits)  # the cut first line was dropped
    assert sum(1 for hit in hits if hit and hit.time >= since) == sum(1 for when in times if when >= since)


def test_the_day_reads_the_rotated_files_and_the_hour_does_not(tmp_path):
    write_lines(tmp_path / "access.log", [NOW - 4000 + 10 * i for i in range(400)])  # from 66 minutes ago
    write_lines(tmp_path / "access.log.1", [NOW - 30000 + 10 * i for i in range(2000)])  # older
    # Lines in the hour in access.log.2 (never so in real life): read only if it were opened.
    write_lines(tmp_path / "access.log.2", [NOW - 60])
    (tmp_path / "access.log.9").write_text(line(NOW - 60))  # past ACCESS_LOG_KEEP: not one of ours
    hour, oldest = traffic.read_hits(tmp_path, NOW - 3600)
    assert oldest >= NOW - 4000 - traffic.MARGIN_SECONDS and len([h for h in hour if h.time >= NOW - 3600]) == 360
    day, oldest = traffic.read_hits(tmp_path, NOW - 86400)
    assert len(day) == 2401 and oldest == NOW - 30000


def test_plano_traffic_prints_the_figures(infra, capsys):  # noqa: F811
    now = time.time()
    folder = infra / n.access_logs_dir("prod")
    folder.mkdir(parents=True, exist_ok=True)
    statuses = [200] * 7 + [404, 500, 503]
    (folder / "access.log").write_text("".join(line(now - 100 + i, status=s, seconds=0.001 * (i + 1))
                                               for i, s in enumerate(statuses)))
    assert main(["traffic", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    total = data["apps"]["app1"]["total"]
    assert (data["lines"], total["requests"], total["status_4xx"], total["status_5xx"]) == (10, 10, 1, 2)
    assert (total["p50_ms"], total["p95_ms"]) == (5.0, 10.0)
    assert sum(b["requests"] for b in data["apps"]["app1"]["buckets"]) == 10
    assert main(["traffic", "app1", "--since", "1d"]) == 0
    out = capsys.readouterr().out
    assert "data/logs/nginx/access.log: 10 requests in the last 1d" in out
    assert "app1: 10 requests" in out and "4xx 1 (10.0%), 5xx 2 (20.0%), p50 5 ms, p95 10 ms" in out


def test_plano_traffic_refuses_an_unknown_app(infra, capsys):  # noqa: F811
    assert main(["traffic", "nope"]) == 2
    assert "APP: no app 'nope' in plano.yml (its apps: app1)" in capsys.readouterr().err


hits = st.builds(t.Hit, st.floats(NOW - 2 * 86400, NOW + 600), st.sampled_from(["app1", "app2", ""]),
                 st.sampled_from([200, 204, 301, 404, 429, 500, 502]), st.floats(0, 30))


@settings(max_examples=200, deadline=None)
@given(st.lists(hits, max_size=300), st.sampled_from(["1h", "1d"]))
def test_the_buckets_add_up_to_the_lines_in_the_window(sample, window):
    chosen = t.WINDOWS[window]
    start, _ = chosen.bounds(NOW)
    report = t.summarize(sample, chosen, NOW)
    inside = [h for h in sample if start <= h.time <= NOW]
    assert sum(a.total.requests for a in report.values()) == len(inside)
    for app, figures in report.items():
        mine = [h for h in inside if h.app == app]
        assert sum(b.requests for b in figures.buckets) == figures.total.requests == len(mine)
        assert sum(b.status_5xx for b in figures.buckets) == sum(1 for h in mine if h.status >= 500)
        assert sum(b.status_4xx for b in figures.buckets) == sum(1 for h in mine if 400 <= h.status < 500)
        if mine:
            assert min(h.seconds for h in mine) * 1000 - 0.001 <= figures.total.p50_ms <= figures.total.p95_ms
