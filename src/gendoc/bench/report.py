"""The bench's results as Markdown tables in the README (between marker comments) and as
an SVG plot of throughput and p95 against pages. Nothing here is typed by hand: every
cell comes from the JSON files the bench wrote.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

CONVERTER_LABELS = {
    "raw": "`raw`: our pool driven over UNO in-process, no HTTP (the ceiling)",
    "single": "`single`: one warm LibreOffice of ours driven in-process over UNO, "
              "one conversion at a time, no HTTP",
    "http": "`http`: the converter sidecar over HTTP",
    "threads": "`threads`: one thread per instance, no pool",
    "procs": "`procs`: one process per instance",
}


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _s(seconds: float) -> str:
    if not seconds:
        return ""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _spread(rounds: list[float]) -> str:
    if len(rounds) < 2:
        return ""
    return f" ({_n(min(rounds))}\N{EN DASH}{_n(max(rounds))})"


def _rounds(count: int) -> str:
    return f"{count} round" + ("s" if count != 1 else "")


def _statuses(status: dict[str, int]) -> str:
    return ", ".join(f"{count:,} \N{MULTIPLICATION SIGN} {code}" for code, count in status.items())


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %"


# -- the tables -------------------------------------------------------------------------
def converter_section(result: dict[str, Any]) -> str:
    rounds = result.get("rounds", 1)
    lines = [
        f"**The converter alone**, {result['date']}, {result['cpus']} cores — "
        f"`{result.get('command', 'gendoc bench converter')}`; conversions/min is the median "
        f"of {_rounds(rounds)} (lowest\N{EN DASH}highest in brackets), the one-page invoice; "
        "client CPU is the HTTP load generator's own share of the machine's CPU "
        "(the other modes drive LibreOffice in-process, with no client):",
        "",
        "| mode | LibreOffice instances | clients | conversions/min | p50 | p95 | client CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["results"]:
        client = _pct(r.get("bench_cpu_share", 0.0)) if r["mode"] == "http" else ""
        lines.append(
            f"| {CONVERTER_LABELS.get(r['mode'], r['mode'])} | {r['instances']} | "
            f"{r['concurrency']} | {_n(r['per_minute'])}{_spread(r.get('rounds', []))} | "
            f"{_s(r['p50_ms'] / 1000)} | {_s(r['p95_ms'] / 1000)} | {client} |")
    ratios = result.get("ratios", {})
    if ratios:
        lines += ["", "; ".join(f"{name.replace('/', ' / ')} = **{value:.2f}**"
                              for name, value in ratios.items()) + "."]
    return "\n".join(lines)


def _mode_label(row: dict[str, Any], descriptions: dict[str, str], seen: set[str]) -> str:
    mode = row["mode"]
    if mode in seen:
        return f"`{mode}`"
    seen.add(mode)
    return f"`{mode}`: {descriptions.get(mode, '')}"


def _load(row: dict[str, Any]) -> str:
    if row["model"] == "closed":
        clients = int(row["load"].removeprefix("c="))
        return f"{clients} client" + ("s" if clients != 1 else "")
    what = "open" if row["model"] == "open" else "open, twice the capacity"
    return f"{what}, {row['load']}"


def stack_section(result: dict[str, Any]) -> str:
    s = result["settings"]
    descriptions = result["descriptions"]
    lines = [
        f"**The whole stack and its peers**, {result['date']}, {result['cores']} cores "
        f"({result['cpu']}) — `{result.get('command', 'gendoc bench')}`, {_rounds(s['rounds'])} "
        f"of {s['duration']:g} s per mode after {s['warmup']:g} s of the same load as "
        "warm-up; documents (PDFs, DOCX for `gendoc-docx*`) per minute are the median of the "
        "rounds (lowest\N{EN DASH}highest in brackets), "
        "latencies are pooled; the last column is the load generator's own share of the "
        "machine's CPU:",
        "",
        "| mode | load | documents/min | p50 | p95 | p99 | statuses | peak RSS | client CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    seen: set[str] = set()
    for r in result["rows"]:
        p95 = _s(r["p95"])
        if r["model"] == "overload":
            refused = _s(r["refused_p95"]) or "none"
            p95 = f"admitted {_s(r['ok_p95'])}; refused {refused}"
        rss = f"{r['peak_rss_mb']:,.0f} MB" if r["peak_rss_mb"] else ""
        lines.append(
            f"| {_mode_label(r, descriptions, seen)} | {_load(r)} | "
            f"{_n(r['per_min'])}{_spread(r['rounds'])} | {_s(r['p50'])} | {p95} | "
            f"{_s(r['p99'])} | {_statuses(r['status'])} | {rss} | "
            f"{_pct(r['client_cpu_share'])} |")
    ratios = result.get("ratios", {})
    if ratios:
        lines += ["", f"gendoc's PDFs/min (the closed run, {s['concurrency']} clients, render + "
                  "convert) over each peer's, and the configuration that peer ran in:", ""]
        for name, value in ratios.items():
            base = name.split("/", 1)[1]
            lines.append(f"- / `{base}` ({descriptions.get(base, base)}): **{value:.2f}**")
    if result.get("batch_ratios"):
        lines += ["", "Batches (items converted as merged documents, then split) over the same "
                  "documents one request each, PDFs/min:", ""]
        for name, value in result["batch_ratios"].items():
            batch, single = name.split("/", 1)
            lines.append(f"- `{batch}` / `{single}`: **{value:.2f}**")
    if result.get("store_ratio"):
        lines += ["", "Templates in S3-compatible object storage against the directory store "
                  f"(`gendoc-docx-s3` over `gendoc-docx`, a hot template): "
                  f"**{result['store_ratio']:.3f}**"]
    if result.get("failures"):
        lines += ["", "Runs that failed (their rounds are missing above):", ""]
        lines += [f"- {_md(failure)}" for failure in result["failures"]]
    return "\n".join(lines)


def sizes_section(result: dict[str, Any], svg_name: str) -> str:
    descriptions = result["descriptions"]
    s = result["settings"]
    lines = [
        f"**Document size**, same run: each document converted by each peer, "
        f"{s['size_concurrency']} clients, DOCX in (rendered once beforehand), PDF out; "
        "peak RSS of the converter's processes (LibreOffice included). "
        f"Plot: [docs/bench/{svg_name}](docs/bench/{svg_name}).",
        "",
        "| document | pages | peer | PDFs/min | p50 | p95 | converter peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    labels = result["documents"]
    for r in result["sizes"]:
        lines.append(
            f"| {labels[r['document']]['label']} | {r['pages']} | `{r['mode']}` | "
            f"{_n(r['per_min'])}{_spread(r['rounds'])} | {_s(r['p50'])} | {_s(r['p95'])} | "
            f"{r['peak_rss_mb']:,.0f} MB |")
    peers = list(dict.fromkeys(r["mode"] for r in result["sizes"]))
    lines += [""] + [f"`{p}`: {descriptions.get(p, '')}." for p in peers]
    rate = {(r["mode"], r["document"]): r["per_min"] for r in result["sizes"]}
    for other in peers[1:]:
        pairs = [(doc, rate[(peers[0], doc)] / rate[(other, doc)])
                 for doc in dict.fromkeys(r["document"] for r in result["sizes"])
                 if rate.get((peers[0], doc)) and rate.get((other, doc))]
        if pairs:
            lines += ["", f"`{peers[0]}` / `{other}`, PDFs/min: " + "; ".join(
                f"{labels[doc]['label']} **{value:.2f}**" for doc, value in pairs) + "."]
    return "\n".join(lines)


# -- README markers ---------------------------------------------------------------------
def _marker(name: str) -> tuple[str, str]:
    return (f"<!-- bench:{name} begin: written by `gendoc bench report`, do not edit -->",
            f"<!-- bench:{name} end -->")


def replace_section(text: str, name: str, body: str) -> str:
    """Put `body` between the markers of section `name` (which must be there, once)."""
    begin, end = _marker(name)
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    if len(pattern.findall(text)) != 1:
        raise ValueError(f"the README needs exactly one pair of markers:\n{begin}\n{end}")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text)


# -- the plot ---------------------------------------------------------------------------
COLORS = ["#c33", "#36c", "#2a2", "#a6c", "#e90"]


def sizes_svg(result: dict[str, Any]) -> str:
    """Two panels against pages (log scale): PDFs/min, and p95 in seconds; a line a peer."""
    w, h, panel_w, left, top, bottom = 900, 380, 340, 70, 50, 60
    rows = [r for r in result["sizes"] if r["pages"]]
    peers = list(dict.fromkeys(r["mode"] for r in rows))
    pages = sorted({r["pages"] for r in rows}) or [1]
    lo, hi = math.log(min(pages)), math.log(max(pages))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14">Throughput and p95 latency against pages '
        f'({result["date"]}, {result["cores"]} cores, {result["settings"]["size_concurrency"]} '
        'clients)</text>',
    ]
    for index, (key, title) in enumerate((("per_min", "PDFs/min"), ("p95", "p95 (s)"))):
        x0 = left + index * (panel_w + 110)
        y_max = _nice(max((r[key] for r in rows), default=1.0))

        def px(p: int, x0: float = x0) -> float:
            return x0 + (panel_w * (math.log(p) - lo) / (hi - lo) if hi > lo else panel_w / 2)

        def py(v: float, y_max: float = y_max) -> float:
            return top + (h - top - bottom) * (1 - v / y_max)

        parts.append(f'<text x="{x0}" y="{top - 10}" font-weight="bold">{title}</text>')
        parts.append(f'<path d="M{x0},{top} V{h - bottom} H{x0 + panel_w}" fill="none" '
                     'stroke="#888"/>')
        for k in range(5):
            v = y_max * k / 4
            parts.append(f'<text x="{x0 - 6}" y="{py(v) + 4:.1f}" text-anchor="end">'
                         f'{v:,.{0 if y_max >= 10 else 1}f}</text>')
            parts.append(f'<path d="M{x0},{py(v):.1f} H{x0 + panel_w}" stroke="#eee"/>')
        for p in pages:
            parts.append(f'<text x="{px(p):.1f}" y="{h - bottom + 16}" '
                         f'text-anchor="middle">{p}</text>')
        parts.append(f'<text x="{x0 + panel_w / 2}" y="{h - bottom + 34}" '
                     'text-anchor="middle">pages (log scale)</text>')
        for color, peer in zip(COLORS, peers, strict=False):
            points = sorted((r["pages"], r[key]) for r in rows if r["mode"] == peer)
            d = " ".join(f"{'M' if i == 0 else 'L'}{px(p):.1f},{py(v):.1f}"
                         for i, (p, v) in enumerate(points))
            parts.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
            parts += [f'<circle cx="{px(p):.1f}" cy="{py(v):.1f}" r="3" fill="{color}"/>'
                      for p, v in points]
    for k, (color, peer) in enumerate(zip(COLORS, peers, strict=False)):
        x = left + k * 260
        parts.append(f'<rect x="{x}" y="{h - 14}" width="14" height="4" fill="{color}"/>'
                     f'<text x="{x + 20}" y="{h - 8}">{_xml(peer)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _nice(value: float) -> float:
    """The round number at or above `value` that makes four even steps."""
    if value <= 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(value / 4))
    for mult in (1, 2, 2.5, 5, 10):
        if value <= 4 * step * mult:
            return 4 * step * mult
    return 40 * step


def _md(text: str) -> str:
    """One line of Markdown (no line breaks, no table pipes), its start and its end: a
    failure's cause is often the last line of a log tail."""
    line = " ".join(text.split()).replace("|", "\\|")
    return line if len(line) <= 400 else f"{line[:120]} \N{HORIZONTAL ELLIPSIS} {line[-280:]}"


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_readme(readme: Path, converter: dict[str, Any] | None, stack: dict[str, Any] | None,
                 svg_name: str) -> None:
    text = readme.read_text()
    if converter:
        text = replace_section(text, "converter", converter_section(converter))
    if stack:
        text = replace_section(text, "stack", stack_section(stack))
        if stack.get("sizes"):
            text = replace_section(text, "sizes", sizes_section(stack, svg_name))
    readme.write_text(text)
