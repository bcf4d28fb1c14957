"""Table output of insight commands: a compact list, and one insight with a terminal chart
of its evidence. Only the table format draws; JSON and YAML stay the plain result."""

from __future__ import annotations

import shutil
from typing import Any

from bunsui_mcp._cli_render import OutputFormat
from bunsui_mcp._text_width import clip, wrap

CHART_HEIGHT = 14


def _list_view(data: dict[str, Any], width: int) -> str:
    """Per insight: id, kind, confidence and status, then its title indented below."""
    insights = data["insights"]
    if not insights:
        return "insights: (none)"
    id_width = max(len(i["insight_id"]) for i in insights)
    lines = [f"{'INSIGHT_ID'.ljust(id_width)}  KIND         CONF  STATUS"]
    for item in insights:
        lines.append(
            f"{item['insight_id'].ljust(id_width)}  {item['kind']:<11}  "
            f"{item['confidence']:.2f}  {item['status']}"
        )
        lines.append("  " + clip(item["title"], width - 2))
    return "\n".join(lines)


def chart(evidence: dict[str, Any], width: int) -> str | None:
    """The evidence per run as a line chart (with its limit as a horizontal line), drawn
    with plotext; None when fewer than two runs have a value."""
    values = [p["value"] for p in evidence["points"] if p["value"] is not None]
    if len(values) < 2:
        return None
    import plotext  # type: ignore[import-untyped]  # noqa: PLC0415 - only `insight show` in table format draws

    figure = plotext.figure
    figure.clear()
    figure.plot_size(max(width, 40), CHART_HEIGHT)
    figure.draw(figure.signal(list(range(1, len(values) + 1)), values, marker="dot"))
    limits = {p["limit"] for p in evidence["points"] if p["limit"] is not None}
    title = f"{evidence['metric']} per run ({evidence['unit']})"
    if len(limits) == 1:
        limit = limits.pop()
        figure.line(limit, orientation="horizontal")
        title += f", limit {limit:g}"
    figure.title(title)
    figure.label("run (oldest first)")
    return str(figure.build().string(colorless=True)).rstrip()


def _show_view(data: dict[str, Any], width: int) -> str:
    """The insight's key facts, its chart, then the evidence per run."""
    basis = data["confidence_basis"]
    lines = [
        f"insight_id: {data['insight_id']}",
        f"kind: {data['kind']} ({data['rule']})",
        f"pipeline: {data['pipeline_id']}" + (f"  job: {data['job_id']}" if data["job_id"] else ""),
        f"title: {data['title']}",
        f"status: {data['status']}"
        + (f" - {data['status_reason']}" if data.get("status_reason") else ""),
        f"confidence: {data['confidence']:.2f} ({basis['runs']} runs, fit {basis['fit']:.2f} "
        f"by {basis['fit_method']}; outcomes {basis['successes']} helped, "
        f"{basis['failures']} did not)",
        f"suggestion: {data['suggestion']['command']}",
        f"estimated effect: {data['estimated_effect']['summary']}",
    ]
    if data.get("outcome"):
        outcome = data["outcome"]
        lines.append(
            f"outcome: applied {outcome['applied_at']}, {outcome['runs_since']} runs since, "
            f"verdict {outcome['verdict'] or 'pending'}"
        )
    drawn = chart(data["evidence"], width)
    points = data["evidence"]["points"]
    rows = ["SESSION_ID            VERSION  VALUE       LIMIT       STATUS"] + [
        f"{p['session_id']:<20}  {p['pipeline_version']:<7}  {p['value']!s:<10}  "
        f"{p['limit']!s:<10}  {p['status']}"
        for p in points
    ]
    wrapped = ["\n".join(wrap(line, width, subsequent_indent="  ")) for line in lines]
    parts = ["\n".join(wrapped), drawn or "", f"evidence ({data['evidence']['metric']}):"]
    return "\n\n".join(p for p in parts if p) + "\n" + "\n".join(rows)


def insight_view(action: str, data: dict[str, Any], output_format: OutputFormat) -> str | None:
    """Table output for insight list/show; None for anything else (rendered as usual)."""
    if output_format is not OutputFormat.TABLE:
        return None
    width = shutil.get_terminal_size().columns
    if action == "insight:list" and "insights" in data:
        return _list_view(data, width)
    if action == "insight:show" and "evidence" in data:
        return _show_view(data, width)
    return None
