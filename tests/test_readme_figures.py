"""bench/readme_figures.py: README.md's speed paragraph is rewritten from one harness
run (medians of the tag's runs, every peer's figure from the same run, the commit
and date), between its markers; a run missing a figure leaves the README alone."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("readme_figures",
                                              ROOT / "bench" / "readme_figures.py")
figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(figures)


def run(server: str, scenario: str, params: dict, result: dict, tag: str = "t") -> dict:
    return {"server": server, "scenario": scenario, "params": params, "tag": tag,
            "result": result}


def harness_lines(scale: float) -> list[dict]:
    lines = []
    for n, server in enumerate(figures.PEERS, start=1):
        lines += [
            run(server, "throughput", {"clients": 20, "total": 20000, "window": 8},
                {"accepted_updates_per_s": 1000.0 * n * scale}),
            run(server, "fanout", {"clients": 50, "rate": 10.0, "duration": 10.0},
                {"latency_ms": {"p99": 2.0 * n * scale}, "server_cpu_us_per_delivery": 5.0 * n}),
            run(server, "fanout", {"clients": 10, "rate": 10.0, "duration": 10.0},
                {"latency_ms": {"p99": 999.0}, "server_cpu_us_per_delivery": 999.0}),
            run(server, "manydocs", {"docs": 1000, "edits": 2}, {"rss_kib_per_doc": 40.0 + n}),
            run(server, "coldload", {"updates": 10000, "window": 50},
                {"loads": [{"complete_ms": 100.0 * n}, {"complete_ms": 1.0}],
                 "complete_ms_median": 1.0}),
        ]
    return lines


def test_the_paragraph_quotes_the_medians_of_one_tag_with_the_commit_and_date(tmp_path):
    lines = harness_lines(1.0) + harness_lines(3.0) + harness_lines(2.0)
    lines += [dict(line, tag="other") for line in harness_lines(100.0)]  # another run
    text = figures.paragraph(figures.medians(lines, "t"), "abc1234", "2026-12-06")
    assert "(collab abc1234, 2026-12-06," in text
    assert "2,000 accepted updates/s" in text  # the median of 1,000, 3,000 and 2,000
    assert "Node y-websocket server: 4,000" in text and "relay: 6,000" in text
    assert "fan-out p99 of 4.0 ms" in text and "999" not in text  # the 50-client runs only
    assert "41 KiB per loaded document (Node: 42)" in text
    assert "fully loaded 100 ms after a restart (Node: 200 ms)" in text  # the first load

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{figures.BEGIN}\nold figures\n{figures.END}\n\nafter\n")
    readme.write_text(figures.rewrite(readme.read_text(), text))
    body = readme.read_text()
    assert "old figures" not in body and "before" in body and "after" in body
    assert body.count(figures.BEGIN) == 1 and "abc1234" in body
    assert all(len(line) <= 80 for line in body.splitlines())


def test_a_run_missing_a_peer_leaves_the_readme_alone(tmp_path):
    lines = [line for line in harness_lines(1.0) if line["server"] != "pycrdt-uvicorn"]
    with pytest.raises(figures.MissingFigure, match="pycrdt-uvicorn"):
        figures.paragraph(figures.medians(lines, "t"), "abc1234", "2026-12-06")
    with pytest.raises(figures.MissingFigure, match="markers"):
        figures.rewrite("no markers here", "text")


def test_the_readme_has_the_markers_once_around_its_speed_paragraph():
    readme = (ROOT / "README.md").read_text()
    assert readme.count(figures.BEGIN) == 1 and readme.count(figures.END) == 1
    between = readme.split(figures.BEGIN)[1].split(figures.END)[0]
    assert "Speed, measured side by side" in between and "collab " in between
    results = [json.dumps(line) for line in harness_lines(1.0)]  # the format it reads
    assert all(json.loads(line)["tag"] == "t" for line in results)
