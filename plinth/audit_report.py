"""The audit report as people and machines read it: Markdown (a pull request comment), JSON,
and a self-contained HTML page (no script, no remote asset: it opens from a CI artifact).
All three are written from `Report` alone, so they always say the same."""
from __future__ import annotations

import html
import json

from plinth.audit import Report
from plinth.diff import change_line, object_line, summary

_OPS = {"create": "+", "update": "~", "replace": "±", "delete": "-"}


def to_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"


def _sections(report: Report) -> list[tuple[str, list[str], list[list[str]] | None, str | None]]:
    """(title, text lines, table rows (first row the header) or None, problem) per section."""
    sections: list[tuple[str, list[str], list[list[str]] | None, str | None]] = []
    infra = report.infrastructure or []
    sections.append((
        "Infrastructure plan",
        [f"{len(infra)} resources change" if infra else "no resource changes"],
        [["op", "type", "name", "changed properties"],
         *([_OPS[c.op] + " " + c.op, c.type, c.name, ", ".join(c.properties)]
           for c in infra)] if infra else None,
        report.infrastructure_error))
    lines = []
    for d in report.gitops:
        lines.append(f"{d.status} {object_line(d)}")
        lines += [change_line(c).strip() for c in d.changes]
    sections.append((f"GitOps change (against {report.base})",
                     [*lines, summary(report.gitops)], None, report.gitops_error))
    live = report.live or []
    rows: list[list[str]] = [["kustomization", "ready", "revision", "objects", "drift"]]
    for k in live:
        drift = [*(f"missing {m}" for m in k.missing),
                 *(f"{e.object} edited by {e.manager} ({e.operation}, {e.time})"
                   for e in k.edited)]
        rows.append([k.name, k.ready, k.revision, str(k.objects), "; ".join(drift) or "none"])
    sections.append(("Live state", [
        f"{sum(k.drifted for k in live)} of {len(live)} Kustomizations drifted from git"
        if live else "no Kustomization read"], rows if live else None, report.live_error))
    history: list[list[str]] = [["when", "what", "who / result", "details"]]
    history += [[u.start, f"pulumi update #{u.version} ({u.kind})", u.result,
                 ", ".join(f"{k} {v}" for k, v in sorted(u.changes.items()))]
                for u in report.updates]
    history += [[c.date, f"commit {c.sha[:12]}", c.author, c.subject] for c in report.commits]
    sections.append(("Who changed what", [] if len(history) > 1 else ["no history found"],
                     history if len(history) > 1 else None, None))
    return sections


def _verdict(report: Report) -> str:
    said = "changes" if report.changed else "no changes"
    drift = "; the cluster has drifted from git" if report.drifted else ""
    return f"Stack `{report.stack}`: {said}{drift}."


def to_markdown(report: Report) -> str:
    out = [f"# Plinth audit: stack {report.stack}", "", _verdict(report), ""]
    for title, lines, rows, problem in _sections(report):
        out += [f"## {title}", ""]
        if problem:
            out += [f"**Not available:** {problem}", ""]
            continue
        if lines:
            out += ["```", *lines, "```", ""]
        if rows:
            out.append("| " + " | ".join(rows[0]) + " |")
            out.append("|" + "---|" * len(rows[0]))
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                    for row in rows[1:]]
            out.append("")
    return "\n".join(out)


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#1f2328}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #d0d7de;padding-bottom:.3em}
pre{background:#f6f8fa;padding:.8em;overflow:auto}table{border-collapse:collapse}
td,th{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
.problem{color:#9a6700}.verdict{font-weight:600}
"""


def to_html(report: Report) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>Plinth audit: stack {e(report.stack)}</title>",
           f"<style>{_STYLE}</style></head><body>",
           f"<h1>Plinth audit: stack {e(report.stack)}</h1>",
           f"<p class=\"verdict\">{e(_verdict(report).replace('`', ''))}</p>"]
    for title, lines, rows, problem in _sections(report):
        out.append(f"<section><h2>{e(title)}</h2>")
        if problem:
            out.append(f"<p class=\"problem\">Not available: {e(problem)}</p></section>")
            continue
        if lines:
            out.append("<pre>" + e("\n".join(lines)) + "</pre>")
        if rows:
            out.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in rows[0])
                       + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                    for row in rows[1:]]
            out.append("</tbody></table>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
