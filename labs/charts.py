"""An analyte's history as inline SVG, drawn against its reference band.

Pure functions of their arguments (no request, no database), so the pages and the printed
lab report draw the same chart. Styling is in presentation attributes, not CSS classes, so
the SVG looks the same wherever it is embedded (a page, a PDF renderer).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

BAND_FILL = "#d9f2e1"
BAND_EDGE = "#7cc596"
LINE = "#1f5fa8"
IN_RANGE = "#1f5fa8"
OUT_OF_RANGE = "#b42318"
AXIS = "#5b6472"
GRID = "#e3e7ed"
FONT = "DejaVu Sans, sans-serif"


def _number(value) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(Decimal(str(value)))
    except ArithmeticError:
        return None
    return number if math.isfinite(number) else None


def _seconds(when) -> float:
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.timestamp()
    if isinstance(when, dt.date):
        return dt.datetime.combine(when, dt.time(12), tzinfo=dt.UTC).timestamp()
    return float(when)


def _day(when) -> str:
    if isinstance(when, dt.datetime | dt.date):
        return when.strftime("%Y-%m-%d")
    return str(when)


def number_text(value: float) -> str:
    """A number as a person writes it: no trailing zeros, no exponent."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _nice_step(span: float, target_ticks: int = 4) -> float:
    raw = span / max(target_ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _ticks(lo: float, hi: float) -> list[float]:
    step = _nice_step(hi - lo)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9 and len(ticks) < 12:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _y_domain(values: list[float], low: float | None, high: float | None) -> tuple[float, float]:
    considered = values + [b for b in (low, high) if b is not None]
    lo, hi = min(considered), max(considered)
    if hi == lo:
        pad = abs(hi) * 0.2 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.12
    lo -= pad
    hi += pad
    # Lab values are rarely negative; do not invent a negative axis for them.
    if lo < 0 <= min(considered):
        lo = 0.0
    return lo, hi


def analyte_chart_svg(
    points: Iterable,
    *,
    low=None,
    high=None,
    unit: str = "",
    width: int = 640,
    height: int = 200,
    title: str = "",
) -> str:
    """SVG of (when, value) points against the reference band low..high.

    ``points``: pairs of (date or datetime, number); pairs whose value is not a number are
    left out. ``low``/``high`` may be None (no bound on that side). Points outside the band
    are drawn as red diamonds, inside as blue circles, so shape tells them apart as well as
    colour. Returns "" when there is no number to draw.
    """
    data = sorted(
        ((when, number) for when, value in points if (number := _number(value)) is not None),
        key=lambda pair: _seconds(pair[0]),
    )
    if not data:
        return ""
    low_n, high_n = _number(low), _number(high)
    values = [value for _, value in data]
    y_lo, y_hi = _y_domain(values, low_n, high_n)

    # The unit sits above the value axis, in the top margin.
    left, right, top, bottom = 56, 16, 22 if unit else 12, 30
    plot_w = max(width - left - right, 10)
    plot_h = max(height - top - bottom, 10)
    times = [_seconds(when) for when, _ in data]
    t_lo, t_hi = times[0], times[-1]

    def x_of(index: int) -> float:
        if t_hi == t_lo:
            # Runs at the same moment (or one run): spread evenly, centred.
            return left + plot_w * (index + 1) / (len(data) + 1)
        return left + plot_w * (times[index] - t_lo) / (t_hi - t_lo)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - (value - y_lo) / (y_hi - y_lo))

    unit_text = f" {unit}" if unit else ""
    if low_n is not None and high_n is not None:
        band_text = f"reference {number_text(low_n)}–{number_text(high_n)}{unit_text}"
    elif low_n is not None:
        band_text = f"reference at least {number_text(low_n)}{unit_text}"
    elif high_n is not None:
        band_text = f"reference at most {number_text(high_n)}{unit_text}"
    else:
        band_text = "no reference range"
    summary = (
        f"{title + ': ' if title else ''}{len(data)} result{'s' if len(data) != 1 else ''} "
        f"from {_day(data[0][0])} to {_day(data[-1][0])}, latest "
        f"{number_text(values[-1])}{unit_text}; {band_text}"
    )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(summary)} '
        f'font-family="{FONT}" font-size="11">',
        f"<title>{escape(summary)}</title>",
    ]
    for tick in _ticks(y_lo, y_hi):
        y = y_of(tick)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{AXIS}">'
            f"{escape(number_text(tick))}</text>"
        )
    if low_n is not None or high_n is not None:
        band_top = y_of(high_n) if high_n is not None else top
        band_bottom = y_of(low_n) if low_n is not None else top + plot_h
        band_top, band_bottom = max(band_top, top), min(band_bottom, top + plot_h)
        parts.append(
            f'<rect x="{left}" y="{band_top:.1f}" width="{plot_w}" '
            f'height="{max(band_bottom - band_top, 0):.1f}" fill="{BAND_FILL}">'
            f"<title>{escape(band_text)}</title></rect>"
        )
        for bound in (low_n, high_n):
            if bound is not None:
                y = y_of(bound)
                parts.append(
                    f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{BAND_EDGE}" stroke-width="1" stroke-dasharray="4 3"/>'
                )
    parts.append(
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="{AXIS}"/>'
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{AXIS}"/>'
    )
    if unit:
        parts.append(
            f'<text x="{left}" y="{top - 8}" fill="{AXIS}" text-anchor="middle">'
            f"{escape(unit)}</text>"
        )
    first_day, last_day = _day(data[0][0]), _day(data[-1][0])
    axis_y = top + plot_h + 18
    parts.append(
        f'<text x="{x_of(0):.1f}" y="{axis_y}" text-anchor="'
        f'{"start" if len(data) > 1 and t_hi != t_lo else "middle"}" fill="{AXIS}">'
        f"{escape(first_day)}</text>"
    )
    if last_day != first_day:
        parts.append(
            f'<text x="{x_of(len(data) - 1):.1f}" y="{axis_y}" text-anchor="end" '
            f'fill="{AXIS}">{escape(last_day)}</text>'
        )

    coords = [(x_of(i), y_of(value)) for i, (_, value) in enumerate(data)]
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="1.5"/>')
    for (when, value), (x, y) in zip(data, coords, strict=True):
        outside = (low_n is not None and value < low_n) or (high_n is not None and value > high_n)
        label = f"{_day(when)}: {number_text(value)}{unit_text}"
        if outside:
            label += " (outside the reference range)"
            parts.append(
                f'<path d="M{x:.1f},{y - 5.5:.1f} L{x + 5.5:.1f},{y:.1f} L{x:.1f},{y + 5.5:.1f} '
                f'L{x - 5.5:.1f},{y:.1f} Z" fill="{OUT_OF_RANGE}"><title>{escape(label)}</title>'
                "</path>"
            )
        else:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{IN_RANGE}">'
                f"<title>{escape(label)}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)
