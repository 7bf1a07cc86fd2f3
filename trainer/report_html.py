"""The HTML of `trainer report`: one self-contained page (inline CSS, inline SVG plots, no script, nothing fetched) so
that it can be mailed or attached to an issue and open the same anywhere. Every helper escapes the text it is given;
only `raw` fragments (other helpers' output, matplotlib's SVG) pass through."""

import html
from typing import Iterable, List, Optional, Sequence, Tuple

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 0 1.5em 3em; color: #1d1d1f; }
h1 { margin-top: 1em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2.2em; } h3 { margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; } caption { text-align: left; font-weight: 600; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.pairs th { background: none; font-weight: 600; white-space: nowrap; }
code, .mono { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: 0.92em; }
.note { color: #555; } .warn { color: #a03000; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: 0.9em; }
nav ul { columns: 2; }
"""


class Raw(str):
    """HTML that is already safe (built by these helpers, or an SVG from matplotlib)."""


def esc(value: object) -> str:
    return value if isinstance(value, Raw) else html.escape("" if value is None else str(value))


def join(parts: Iterable[str]) -> Raw:
    return Raw("\n".join(esc(p) for p in parts))


def tag(name: str, content: object = "", **attributes: Optional[str]) -> Raw:
    """<name attr="...">content</name>; an attribute given as None is left out, `class_` is `class`."""
    attrs = "".join(' {}="{}"'.format(key.rstrip("_"), html.escape(str(value), quote=True))
                    for key, value in attributes.items() if value is not None)
    return Raw("<{0}{1}>{2}</{0}>".format(name, attrs, esc(content)))


def paragraph(text: object, kind: Optional[str] = None) -> Raw:
    return tag("p", text, class_=kind)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], caption: Optional[str] = None,
          numeric: Sequence[int] = ()) -> Raw:
    """A table; the columns in `numeric` are right-aligned."""
    head = tag("tr", join(tag("th", h) for h in headers))
    body = [tag("tr", join(tag("td", cell, class_="num" if i in numeric else None) for i, cell in enumerate(row)))
            for row in rows]
    return tag("table", join(([tag("caption", caption)] if caption else []) + [head] + body))


def pairs(rows: Iterable[Tuple[str, object]], caption: Optional[str] = None) -> Raw:
    """A two-column table of name / value."""
    body = [tag("tr", join([tag("th", name), tag("td", value)])) for name, value in rows]
    return tag("table", join(([tag("caption", caption)] if caption else []) + body), class_="pairs")


def bullets(items: Iterable[object]) -> Raw:
    return tag("ul", join(tag("li", item) for item in items))


def figure(svg: str, caption: str) -> Raw:
    return tag("figure", join([Raw(svg), tag("figcaption", caption)]))


def section(anchor: str, title: str, content: Sequence[str], level: int = 2) -> Raw:
    return tag("section", join([tag("h{}".format(level), title)] + list(content)), id=anchor)


def contents(links: Sequence[Tuple[str, str]]) -> Raw:
    """The page's table of contents: (anchor, title) pairs."""
    return tag("nav", bullets(tag("a", title, href="#" + anchor) for anchor, title in links))


def page(title: str, intro: Sequence[str], sections: Sequence[str]) -> str:
    head = join([Raw('<meta charset="utf-8">'),
                 Raw('<meta name="viewport" content="width=device-width, initial-scale=1">'),
                 tag("title", title), tag("style", Raw(CSS))])
    body = join([tag("h1", title)] + list(intro) + list(sections))
    return "<!DOCTYPE html>\n" + tag("html", join([tag("head", head), tag("body", body)]), lang="en") + "\n"


def number(value: Optional[float], fmt: str = "{:.4g}") -> str:
    return "-" if value is None else fmt.format(value)


def span(values: Optional[List[float]], fmt: str = "{:.0f}") -> str:
    """A [min, max] range as "a-b" (one number when they agree), "-" when unknown."""
    if not values:
        return "-"
    low, high = (fmt.format(v) for v in values)
    return low if low == high else "{}–{}".format(low, high)
