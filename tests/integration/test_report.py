"""`denet report`: an HTML report of real runs (several rules, one failing, one killed with kill -9
so that it has no summary, one shorter than the sampling interval) opened in a real headless
Chromium with no network; PNG and SVG images of single runs; clear errors for bad input."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .chromium import Chromium, find_chromium
from .helpers import DENET, denet, kill_quietly, no_traceback, start_denet, wait_for

pytestmark = pytest.mark.integration

pytest.importorskip("altair")
pytest.importorskip("vl_convert")
Image = pytest.importorskip("PIL.Image")

needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="chromium is not installed (CI installs it in .ci/run)")

ALLOC = "import time; x = [bytearray(1 << 20) for _ in range(40)]; t = time.time()\nwhile time.time() - t < 0.6: pass"


def _run(out: Path, *labels: str, cmd: list[str], extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    args = ["run", "--write-env", "--quiet", "-o", str(out), *extra]
    for lab in labels:
        args += ["--label", lab]
    return denet(*args, "--", *cmd, timeout=120)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """A directory of real runs of several rules."""
    d = tmp_path_factory.mktemp("workflow")
    py = sys.executable
    r = _run(d / "align_1.jsonl", "rule=align", "threads=2", "mem_mb=100", cmd=[py, "-c", ALLOC])
    assert r.returncode == 0, r.stderr
    r = _run(d / "align_2.jsonl", "rule=align", "threads=2", "mem_mb=100", cmd=[py, "-c", ALLOC])
    assert r.returncode == 0, r.stderr
    r = _run(d / "sort_1.jsonl", "rule=sort", cmd=["sh", "-c", "seq 1 200000 | sort -n > /dev/null"])
    assert r.returncode == 0, r.stderr
    r = _run(d / "sort_2.jsonl", "rule=sort", cmd=["sh", "-c", "seq 1 50000 | sort -n > /dev/null; exit 3"])
    assert r.returncode == 3, r.stderr
    r = _run(d / "quick.jsonl", "rule=quick", cmd=["true"], extra=("--interval", "200"))
    assert r.returncode == 0, r.stderr
    # killed: denet itself gets SIGKILL while the command runs, so the file has no summary line
    killed = d / "killed.jsonl"
    p = start_denet("run", "--write-env", "--quiet", "-o", str(killed), "--label", "rule=killed", "--",
                    "sleep", "30")
    root = None
    try:
        wait_for(lambda: killed.exists() and killed.read_bytes().count(b'"kind":"tree"') >= 3, 30,
                 what="tree records of the run to kill")
        meta = next(json.loads(x) for x in killed.read_text().splitlines() if '"kind":"metadata"' in x)
        root = meta["pid"]
        kill_quietly(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            kill_quietly(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        if root:
            kill_quietly(root, signal.SIGKILL)  # the orphaned sleep
    assert b'"kind":"summary"' not in killed.read_bytes()
    return d


@pytest.fixture(scope="module")
def report_html(workflow, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    r = denet("report", str(workflow), "-o", str(out), timeout=180)
    assert r.returncode == 0, r.stderr.decode()
    no_traceback(r.stderr)
    assert b"6 runs in 4 groups" in r.stderr, r.stderr
    return out


# ------------------------------------------------------------------------------- the page's content


def _with_samples(workflow: Path) -> set[str]:
    """The rules of the runs that have tree records (`true` usually ends before the first sample)."""
    out = set()
    for f in workflow.glob("*.jsonl"):
        text = f.read_text()
        if '"kind":"tree"' in text:
            out.add(re.search(r'"rule":"(\w+)"', text)[1])
    return out


def test_html_is_one_self_contained_file(report_html, workflow):
    text = report_html.read_text()
    assert text.startswith("<!DOCTYPE html>")
    # every script is inline, no stylesheet, image or font is fetched
    assert not re.search(r"<script[^>]*\bsrc=", text)
    assert not re.search(r"<link\b", text)
    assert not re.search(r"""\b(src|href)=["']?(https?:)?//""", text)
    assert "@import" not in text and "url(http" not in text
    assert "window.vegaEmbed=" in text  # vega-embed (with Vega and Vega-Lite) is in the file
    data = json.loads(re.search(r'<script id="denet-data" type="application/json">(.*?)</script>', text, re.S)[1])
    assert [c["id"] for c in data["charts"]] == ["chart-dist", "chart-timeline", "chart-series"]
    assert {s["title"].split(" · ")[0] for s in data["series"]} == _with_samples(workflow)


def test_html_header_tables_and_flags(report_html, workflow):
    text = report_html.read_text()
    host = os.uname().nodename
    assert f"<b>{host}</b>" in text and os.uname().release in text  # where: from the env records
    assert "6 runs" in text and "4 groups by rule" in text
    for collector in ("gpu", "ebpf"):
        assert re.search(rf"<span class='pill[^']*'>{collector}", text), collector
    rules = re.search(r"<table class='sortable' id='rules-table'>(.*?)</table>", text, re.S)[1]
    names = re.findall(r"<td class='txt name' title='([^']*)'>", rules)
    assert sorted(names) == ["align", "killed", "quick", "sort"]
    assert "threads" in rules and "mem_mb" in rules  # requested vs used, from the labels
    flags = re.search(r"<h2 id=\"quality\">Data quality</h2>\s*<ul class='flags'>(.*?)</ul>", text, re.S)[1]
    items = re.findall(r"<li>(.*?)</li>", flags, re.S)
    cut = next(x for x in items if "cut short" in x)
    assert "1 run cut short" in cut and "killed.jsonl" in cut
    short = next(x for x in items if "shorter than the sampling" in x)
    assert "quick.jsonl" in short and "&lt; 200 ms" in short
    failed = next(x for x in items if "failed" in x)
    assert "sort_2.jsonl" in failed and "exit 3" in failed
    runs = re.search(r"<table class='sortable' id='runs-table'>(.*?)</table>", text, re.S)[1]
    assert len(re.findall(r"<tr data-run=", runs)) == 6


@needs_chromium
def test_html_renders_in_a_browser_with_no_network(report_html, workflow, tmp_path):
    probe = """(async () => {
        const opts = Array.from(document.querySelectorAll('#run-select option')).map(o => Number(o.value));
        const shown = [];
        for (const i of opts) {
            await window.denetShowRun(i);
            shown.push(document.querySelectorAll('#chart-series .chart-wrapper > svg.marks path').length);
        }
        const th = Array.from(document.querySelectorAll('#runs-table th')).find(h => h.textContent.startsWith('wall'));
        const col = Array.prototype.indexOf.call(th.parentNode.children, th);
        th.click(); th.click();
        const walls = Array.from(document.querySelectorAll('#runs-table tbody tr'))
            .map(r => r.children[col].getAttribute('data-v')).filter(v => v !== '').map(Number);
        return {shown, walls, sort: th.getAttribute('aria-sort')};
    })()"""
    with Chromium() as browser:
        rep = browser.open_report(str(report_html), probe=probe)
    assert rep.state and rep.state["done"], rep.state
    assert rep.state["errors"] == []
    assert rep.state["rendered"] == rep.state["expected"] == 3
    assert rep.counts["containers"] == rep.counts["drawn"] == 3, rep.counts
    assert rep.counts["empty"] == 0 and rep.counts["chartErrors"] == 0, rep.counts
    assert rep.console_errors == [] and rep.exceptions == [] and rep.log_errors == [], \
        (rep.console_errors, rep.exceptions, rep.log_errors)
    assert rep.console_warnings == [], rep.console_warnings  # Vega warns of empty scales, unknown fields
    assert rep.requests and all(u.startswith(("file://", "data:")) for u in rep.requests), rep.requests
    # every run's time series could be chosen and drawn
    with_samples = sum(1 for f in workflow.glob("*.jsonl") if '"kind":"tree"' in f.read_text())
    assert len(rep.probe["shown"]) == rep.counts["runOptions"] == with_samples
    assert all(n > 5 for n in rep.probe["shown"]), rep.probe
    assert rep.probe["sort"] == "descending" and rep.probe["walls"] == sorted(rep.probe["walls"], reverse=True)
    # the screenshot shows something: many colours, much that is not white
    img = Image.open(io.BytesIO(rep.screenshot)).convert("RGB")
    assert img.width == 1280 and img.height > 1500
    small = img.resize((img.width // 4, img.height // 4))
    colors = small.getcolors(1 << 20)
    assert len(colors) > 200, len(colors)
    white = sum(n for n, c in colors if min(c) >= 250)
    assert white < 0.9 * small.width * small.height
    (tmp_path / "screenshot.png").write_bytes(rep.screenshot)


# ------------------------------------------------------------------------------- images of one run


def _not_blank(png: bytes, want: tuple[int, int]) -> None:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert img.size == want
    colors = img.getcolors(1 << 20)
    assert len(colors) > 30, len(colors)  # antialiased text and lines in several colours
    gray = img.convert("L")
    h = img.height // 4
    for k in range(4):  # something is drawn in every quarter, top to bottom (the stacked panels)
        band = gray.crop((0, k * h, img.width, (k + 1) * h))
        inked = sum(n for n, v in band.getcolors(256) if v < 200)
        assert inked > 300, (k, inked)


@pytest.fixture(scope="module")
def parquet_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("parquet") / "align.parquet"
    r = _run(out, "rule=align", "threads=2", cmd=[sys.executable, "-c", ALLOC])
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("name", ["align_1.jsonl", "parquet", "sort_2.jsonl", "killed.jsonl", "quick.jsonl"])
def test_png_of_one_run_has_the_expected_size(workflow, parquet_run, tmp_path, name):
    out = tmp_path / "run.png"
    src = parquet_run if name == "parquet" else workflow / name
    r = denet("report", str(src), "-o", str(out), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    no_traceback(r.stderr)
    _not_blank(out.read_bytes(), (1000, 800))


def test_png_and_svg_size_and_format_options(workflow, tmp_path):
    out = tmp_path / "run.png"
    r = denet("report", str(workflow / "sort_1.jsonl"), "-o", str(out), "--width", "640", "--height", "480")
    assert r.returncode == 0, r.stderr.decode()
    _not_blank(out.read_bytes(), (640, 480))
    svg = tmp_path / "run.img"
    r = denet("report", str(workflow / "sort_1.jsonl"), "-o", str(svg), "--format", "svg")
    assert r.returncode == 0, r.stderr.decode()
    head = svg.read_text()[:400]
    assert head.startswith("<svg") and 'width="1000"' in head and 'height="800"' in head
    assert "CPU (%" in svg.read_text()


def test_png_of_many_runs_is_a_usage_error(workflow, tmp_path):
    r = denet("report", str(workflow), "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2
    assert b"shows one run, and 6 runs were found" in r.stderr
    no_traceback(r.stderr)
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("out", ["x.html", "x.png"])
def test_empty_file_is_a_clear_error(tmp_path, out):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    r = denet("report", str(empty), "-o", str(tmp_path / out))
    assert r.returncode == 1
    assert r.stderr.decode().strip() == f"denet: {empty}: empty file"
    assert not (tmp_path / out).exists()


def test_empty_directory_is_a_clear_error(tmp_path):
    (tmp_path / "none").mkdir()
    r = denet("report", str(tmp_path / "none"), "-o", str(tmp_path / "x.html"))
    assert r.returncode == 1
    assert f"no runs found in {tmp_path / 'none'}" in r.stderr.decode()
    no_traceback(r.stderr)


def test_broken_file_is_a_clear_error(workflow, tmp_path):
    broken = tmp_path / "broken.jsonl"
    data = (workflow / "sort_1.jsonl").read_bytes()
    broken.write_bytes(data[: data.index(b"\n", 2000) + 40])  # cut inside a record
    r = denet("report", str(broken), "-o", str(tmp_path / "x.html"))
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.startswith(f"denet: {broken}:") and "truncated" in err, err
    no_traceback(err)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet")
    r = denet("report", str(garbage), "-o", str(tmp_path / "x.png"))
    assert r.returncode == 1 and str(garbage) in r.stderr.decode()
    no_traceback(r.stderr)


def test_skip_bad_reports_and_flags_the_file(workflow, tmp_path):
    d = tmp_path / "runs"
    d.mkdir()
    for name in ("sort_1.jsonl", "quick.jsonl"):
        (d / name).write_bytes((workflow / name).read_bytes())
    (d / "bad.jsonl").write_text("not json\n")
    out = tmp_path / "r.html"
    r = denet("report", str(d), "-o", str(out))
    assert r.returncode == 1 and f"{d / 'bad.jsonl'}: not a denet record file" in r.stderr.decode()
    r = denet("report", str(d), "-o", str(out), "--skip-bad")
    assert r.returncode == 0, r.stderr.decode()
    assert f"skipped {d / 'bad.jsonl'}: not a denet record" in r.stderr.decode()
    assert "<b>Skipped</b> " + str(d / "bad.jsonl") in out.read_text()


def test_usage_errors(workflow, tmp_path):
    r = denet("report", str(workflow), "-o", str(tmp_path / "x.pdf"))
    assert r.returncode == 2 and b"cannot tell the format from the extension" in r.stderr
    r = denet("report", str(workflow), "-o", str(tmp_path / "nodir" / "x.html"))
    assert r.returncode == 1 and b"does not exist" in r.stderr
    r = denet("report", str(workflow), "-o", str(tmp_path / "x.html"), "--by", "nolabel")
    assert r.returncode == 2 and b"--by nolabel" in r.stderr
    r = denet("report", str(workflow))
    assert r.returncode == 2 and b"Missing option '--output'" in r.stderr
    no_traceback(r.stderr)


def test_run_path_imports_no_charting_library(tmp_path):
    r = subprocess.run([*DENET[:1], "-X", "importtime", *DENET[1:], "run", "--", "true"], capture_output=True,
                       timeout=60)
    assert r.returncode == 0
    imported = r.stderr.decode()
    assert re.search(r"\|\s+denet\.cli\b", imported)  # the pattern finds what was imported
    for mod in ("altair", "vl_convert", "denet.report"):
        assert not re.search(rf"\|\s+{re.escape(mod)}\b", imported), mod
