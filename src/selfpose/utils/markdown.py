"""A small Markdown → HTML converter for the reports selfpose writes.

It covers the subset the reports use, and covers it properly: headings
(``#`` … ``######``), paragraphs, pipe tables with a separator row (``|---|``,
with ``:`` alignment), images ``![alt](src)`` and links ``[text](href)``,
``**strong**``, ``*emphasis*``, ```code``` spans, bullet and numbered lists,
fenced code blocks and rules (``---``). Everything else is text, escaped.

Why not a Markdown package: a report must render without one installed,
and the reports only ever use this subset. Alt texts and titles may hold
parentheses and ``|`` (the demo's picture captions do); image and link
targets may not hold spaces or ``)`` (file names the reports write never do).
"""

from __future__ import annotations

import html
import re

__all__ = ["inline", "markdown_to_html", "page"]

# One alternation so the leftmost construct wins: code spans first (nothing inside them is markup).
_INLINE = re.compile(
    r"`(?P<code>[^`]+)`"
    r"|!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)"
    r"|\[(?P<text>[^\]]+)\]\((?P<href>[^)\s]+)\)"
    r"|\*\*(?P<strong>\S(?:.*?\S)?)\*\*"
    r"|(?<![\w*])\*(?P<em>[^\s*](?:[^*]*?[^\s*])?)\*(?![\w*])"
)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def inline(text: str) -> str:
    """HTML of one line of Markdown text (escaped; images, links, strong, emphasis, code)."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(_esc(text[pos:m.start()]))
        g = m.groupdict()
        if g["code"] is not None:
            out.append(f"<code>{_esc(g['code'])}</code>")
        elif g["src"] is not None:
            out.append(f'<img src="{_esc(g["src"])}" alt="{_esc(g["alt"])}">')
        elif g["href"] is not None:
            out.append(f'<a href="{_esc(g["href"])}">{inline(g["text"])}</a>')
        elif g["strong"] is not None:
            out.append(f"<strong>{inline(g['strong'])}</strong>")
        else:
            out.append(f"<em>{inline(g['em'])}</em>")
        pos = m.end()
    out.append(_esc(text[pos:]))
    return "".join(out)


def _cells(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    return [c.strip().replace("\\|", "|") for c in _CELL_SPLIT.split(s)]


def _table(lines: list[str]) -> str:
    """HTML of a pipe table: header line, separator line, body lines."""
    head, rule, body = _cells(lines[0]), _cells(lines[1]), [_cells(x) for x in lines[2:]]
    align = []
    for r in rule:
        left, right = r.startswith(":"), r.endswith(":")
        align.append("center" if left and right else "right" if right else "left" if left else None)
    width = len(head)

    def row(cells: list[str], tag: str) -> str:
        cells = (cells + [""] * width)[:width]
        parts = []
        for i, c in enumerate(cells):
            style = f' style="text-align:{align[i]}"' if i < len(align) and align[i] else ""
            parts.append(f"<{tag}{style}>{inline(c)}</{tag}>")
        return "<tr>" + "".join(parts) + "</tr>"

    rows = "\n".join(row(c, "td") for c in body)
    return f"<table>\n<thead>{row(head, 'th')}</thead>\n<tbody>\n{rows}\n</tbody>\n</table>"


def markdown_to_html(text: str) -> str:
    """The HTML body (no ``<html>``/``<body>`` wrapper) of Markdown ``text``; see the module docstring."""
    lines = text.splitlines()
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append("<p>" + "\n".join(inline(x.strip()) for x in para) + "</p>")
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            flush()
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(fence.group(1)):
                j += 1
            out.append("<pre><code>" + _esc("\n".join(lines[i + 1:j])) + "</code></pre>")
            i = j + 1
            continue
        m = _HEADING.match(line)
        if m:
            flush()
            n = len(m.group(1))
            out.append(f"<h{n}>{inline(m.group(2))}</h{n}>")
            i += 1
            continue
        if "|" in line and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]) and "|" in lines[i + 1]:
            flush()
            j = i + 2
            while j < len(lines) and lines[j].strip() and "|" in lines[j]:
                j += 1
            out.append(_table(lines[i:j]))
            i = j
            continue
        if _RULE.match(line):
            flush()
            out.append("<hr>")
            i += 1
            continue
        for pattern, tag in ((_BULLET, "ul"), (_NUMBERED, "ol")):
            if pattern.match(line):
                flush()
                items = []
                while i < len(lines) and pattern.match(lines[i]):
                    items.append("<li>" + inline(pattern.match(lines[i]).group(1)) + "</li>")
                    i += 1
                out.append(f"<{tag}>\n" + "\n".join(items) + f"\n</{tag}>")
                break
        else:
            para.append(line)
            i += 1
    flush()
    return "\n".join(out)


_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;line-height:1.4}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #999;padding:4px 8px}
th{background:#eee}img{max-width:100%}code{background:#f3f3f3;padding:0 2px}"""


def page(text: str, title: str) -> str:
    """A complete HTML page of Markdown ``text`` (UTF-8, a small inline style sheet)."""
    return (f"<!doctype html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n<title>{_esc(title)}</title>\n"
            f"<style>\n{_STYLE}\n</style>\n</head>\n<body>\n{markdown_to_html(text)}\n</body>\n</html>\n")
