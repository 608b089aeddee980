"""The traffic charts: SVG drawn here by pygal from ops.traffic's figures, served as
images (`<img>`: an SVG image never runs a script, and pygal's config script is taken
out of it anyway), with their own CSP (their inline style only)."""

from __future__ import annotations

import time

from plano.core.traffic import AppTraffic, Figures

# What each chart draws: its title, and per line the label and the figure of a bucket.
KINDS = {
    "requests": ("requests/s", (("requests/s", lambda f: f.per_second),)),
    "errors": ("4xx and 5xx (requests)", (("4xx", lambda f: f.status_4xx), ("5xx", lambda f: f.status_5xx))),
    "latency": ("latency (ms, nginx's request_time)", (("p50", lambda f: f.p50_ms), ("p95", lambda f: f.p95_ms))),
}
CSP = "default-src 'none'; style-src 'unsafe-inline'"


def label(bucket: Figures, window: str) -> str:
    return time.strftime("%H:%M" if window == "1h" else "%d %H:%M", time.gmtime(bucket.start))


def without_scripts(root):
    for parent in list(root.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


def svg(traffic: AppTraffic, kind: str) -> bytes:
    import pygal
    from pygal.style import Style

    title, lines = KINDS[kind]
    style = Style(background="white", plot_background="white", font_family="system-ui, sans-serif", title_font_size=18,
                  label_font_size=13, major_label_font_size=13, legend_font_size=14,
                  colors=("#2453c7", "#b42318") if kind != "errors" else ("#8a5a00", "#b42318"))
    chart = pygal.Line(js=[], width=720, height=260, style=style, show_dots=False, fill=kind == "requests",
                       title=f"{traffic.app}: {title}, last {traffic.window} (UTC)", x_label_rotation=0,
                       show_minor_x_labels=False, x_labels_major_every=10 if traffic.window == "1h" else 16,
                       truncate_label=-1, legend_at_bottom=True, include_x_axis=True, explicit_size=False,
                       no_data_text="no requests", min_scale=3, max_scale=6)
    chart.x_labels = [label(b, traffic.window) for b in traffic.buckets]
    for name, value in lines:
        chart.add(name, [value(b) for b in traffic.buckets])
    chart.add_xml_filter(without_scripts)
    return chart.render()
