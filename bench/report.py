"""Bench results as a Markdown table and a bar chart, for reading without the terminal."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Keys shown in their own column; every other numeric key of a row goes to the notes.
_COLUMNS = {
    "name",
    "count",
    "docs_per_second",
    "docs_per_cpu_second",
    "mean_ms",
    "p50_ms",
    "p95_ms",
}


def number(value: Any) -> str:
    """A figure with as many decimals as its size deserves; empty for ``None``."""
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def notes(row: dict[str, Any]) -> str:
    """The numeric keys of ``row`` that have no column, as ``key=value`` pairs."""
    return ", ".join(
        f"{key}={number(value)}" for key, value in row.items() if key not in _COLUMNS and _is_number(value)
    )


def met_label(met: bool | None) -> str:
    """A target's ``met`` as a table cell: yes, no, or blank for a figure given for reference."""
    return "" if met is None else "yes" if met else "no"


def markdown(rows: list[dict[str, Any]], stamp: str, targets: list[dict[str, Any]] | None = None) -> str:
    """A Markdown document with one table row per bench case, then the targets and whether each is met."""
    header = ["case", "n", "docs/s", "docs per CPU-s", "mean ms", "p50 ms", "p95 ms", "notes"]
    lines = [
        f"# postroom bench {stamp}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(":---" if title in ("case", "notes") else "---:" for title in header) + "|",
    ]
    for row in rows:
        cells = [
            str(row["name"]),
            number(row.get("count")),
            *(number(row.get(key)) for key in ("docs_per_second", "docs_per_cpu_second")),
            *(number(row.get(key)) for key in ("mean_ms", "p50_ms", "p95_ms")),
            notes(row),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    if targets:
        lines += ["", "## targets", "", "| figure | value | target | met |", "|:---|---:|:---|:---|"]
        for target in targets:
            met = met_label(target["met"])
            lines.append(f"| {target['figure']} | {target['value']:.2f} | {target['target']} | {met} |")
    return "\n".join(lines) + "\n"


def _bars(axes: Axes, rows: list[dict[str, Any]], key: str, title: str) -> None:
    names = [f"{row['name']} (n={row['count']})" for row in rows]  # sizes tell equal cases apart
    values = [float(row[key]) for row in rows]
    bars = axes.barh(range(len(rows)), values, color="#23456b", tick_label=names)
    axes.bar_label(bars, labels=[number(value) for value in values], padding=3, fontsize=8)
    axes.invert_yaxis()  # first case on top, as in the table
    axes.set_xlim(0, max(values) * 1.18 if max(values) > 0 else 1)
    axes.set_title(title, loc="left", fontsize=10)
    axes.tick_params(axis="y", labelsize=8)
    axes.tick_params(axis="x", labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)


def chart(rows: list[dict[str, Any]], stamp: str) -> Figure:
    """Horizontal bars of documents per second per case, and a second panel of documents per
    CPU-second for the cases that measured it."""
    panels = [
        (selected, key, title)
        for key, title in (
            ("docs_per_second", "documents per second (wall clock)"),
            ("docs_per_cpu_second", "documents per CPU-second (all processes involved)"),
        )
        if (selected := [row for row in rows if _is_number(row.get(key))])
    ]
    heights = [len(selected) for selected, _, _ in panels] or [1]
    figure = Figure(figsize=(10, 1.2 + 0.35 * sum(heights) + 0.6 * len(heights)), layout="constrained")
    figure.suptitle(f"postroom bench {stamp}", fontsize=11)
    grid = figure.add_gridspec(len(heights), 1, height_ratios=heights)
    for index, (selected, key, title) in enumerate(panels):
        _bars(figure.add_subplot(grid[index]), selected, key, title)
    return figure


def write(
    rows: list[dict[str, Any]], folder: Path, stamp: str, targets: list[dict[str, Any]] | None = None
) -> dict[str, Path]:
    """Write ``<stamp>.md`` and ``<stamp>.png`` to ``folder`` and copy them to ``latest.md`` and
    ``latest.png``; return the four paths by name (``markdown``, ``chart``, ``latest_markdown``,
    ``latest_chart``)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": folder / f"{stamp}.md",
        "chart": folder / f"{stamp}.png",
        "latest_markdown": folder / "latest.md",
        "latest_chart": folder / "latest.png",
    }
    paths["markdown"].write_text(markdown(rows, stamp, targets), encoding="utf-8")
    chart(rows, stamp).savefig(paths["chart"], dpi=120)
    shutil.copyfile(paths["markdown"], paths["latest_markdown"])
    shutil.copyfile(paths["chart"], paths["latest_chart"])
    return paths
