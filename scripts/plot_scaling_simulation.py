"""Draws one run of the autoscaling simulation (tests/autoscaling) as an SVG in docs/.

Plain SVG, no plotting library: load (requests/min) as a grey area, desired and
ready replicas as step lines. Run: .venv/bin/python scripts/plot_scaling_simulation.py
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests" / "autoscaling"), str(REPO / "tests")]
from test_simulation import CURVES, DT, POD_RPM, TARGET, fewest, simulate  # noqa: E402

NAME = "steps 200 -> 1500 -> 3000 -> 0"
W, H, LEFT, RIGHT, TOP, BOTTOM = 900, 360, 60, 70, 40, 50


def main() -> None:
    # The step curve with a 45 s spike to 9,000/min inserted before the drop.
    curve = CURVES[NAME][:68] + [9000] * 3 + [3000] * 27 + [0] * 30
    steps = simulate(curve)
    n = len(steps)
    max_rpm = max(curve) * 1.1
    max_pods = max(max(s.desired for s in steps), max(fewest(r) for r in curve)) + 1
    px = lambda i: LEFT + (W - LEFT - RIGHT) * i / n  # noqa: E731
    py_rpm = lambda r: TOP + (H - TOP - BOTTOM) * (1 - r / max_rpm)  # noqa: E731
    py_pods = lambda p: TOP + (H - TOP - BOTTOM) * (1 - p / max_pods)  # noqa: E731

    def steps_path(values: Sequence[float], y: Callable[[float], float]) -> str:
        d = f"M{px(0):.1f},{y(values[0]):.1f}"
        for i, v in enumerate(values):
            d += f" H{px(i):.1f} V{y(v):.1f}"
        return d + f" H{px(n):.1f}"

    load = steps_path(curve, py_rpm) + f" V{py_rpm(0):.1f} H{px(0):.1f} Z"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="14">Simulated fleet: steps, a spike, a drop to zero '
        f'(period {DT:.0f} s, M/M/2 pods of {POD_RPM:,.0f}/min, '
        f'p95 target {TARGET.p95_seconds:g} s)</text>',
        f'<path d="{load}" fill="#ddd" stroke="#bbb"/>',
        f'<path d="{steps_path([fewest(r) for r in curve], py_pods)}" fill="none" stroke="#2a2" '
        'stroke-dasharray="4 3" stroke-width="1.5"/>',
        f'<path d="{steps_path([s.ready for s in steps], py_pods)}" fill="none" '
        'stroke="#48c" stroke-width="2"/>',
        f'<path d="{steps_path([s.desired for s in steps], py_pods)}" fill="none" '
        'stroke="#c33" stroke-width="2"/>',
    ]
    for p in range(0, max_pods + 1, 2):
        parts.append(f'<text x="{LEFT - 8}" y="{py_pods(p) + 4:.1f}" text-anchor="end">{p}</text>')
    for r in range(0, int(max_rpm) + 1, 1500):
        parts.append(f'<text x="{W - RIGHT + 8}" y="{py_rpm(r) + 4:.1f}">{r}/min</text>')
    for i in range(0, n + 1, 20):
        parts.append(f'<text x="{px(i):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">'
                     f'{i * DT / 60:.0f} min</text>')
    legend = [("#c33", "desired replicas"), ("#48c", "ready replicas"),
              ("#2a2", "fewest meeting the target"),
              ("#bbb", "load (right axis)")]
    for k, (color, label) in enumerate(legend):
        x = LEFT + 10 + k * 200
        parts.append(f'<rect x="{x}" y="{H - 22}" width="14" height="4" fill="{color}"/>'
                     f'<text x="{x + 20}" y="{H - 16}">{label}</text>')
    parts.append(f'<text x="14" y="{TOP + 120}" transform="rotate(-90 14 {TOP + 120})">'
                 'replicas</text>')
    parts.append("</svg>")
    out = REPO / "docs" / "autoscaling-simulation.svg"
    out.write_text("\n".join(parts) + "\n")
    print(out)


if __name__ == "__main__":
    main()
