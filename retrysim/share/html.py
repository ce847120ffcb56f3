"""A :class:`~retrysim.share.page.Page` as one self-contained HTML file.

One Jinja template with autoescape on: every string of the page is text, escaped where it is
written, so a scenario named ``<script>`` shows as those characters. The only markup that is
not escaped is a figure's SVG, which :mod:`retrysim.share.figures` made from a matplotlib
figure (its text drawn as paths, so it needs no font).

The page has no script, no external style sheet, font or image, and no link that loads
anything: it opens the same with no network. Its CSS narrows to a phone's width (tables
scroll inside their own box, figures scale) and prints cleanly (no backgrounds, no figure
split across pages). Tones are said in words as well as colours.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from retrysim.share.page import Code, Facts, Figure, Heading, Page, Paragraph, Table

if TYPE_CHECKING:
    import jinja2

#: Okabe and Ito's palette (distinguishable under the common colour-vision deficiencies),
#: shared with the figures (:mod:`retrysim.plots.palette`): blue, vermillion, bluish green,
#: orange.
STYLE = """
:root { --ink: #1b1b1b; --muted: #555; --rule: #d0d0d0; --good: GOOD; --warn: WARN;
        --bad: BAD; --accent: ACCENT; --code: #f4f4f4; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 64rem; padding: 1rem; color: var(--ink); background: #fff;
       font: 16px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       "Noto Sans", "Liberation Sans", "DejaVu Sans", sans-serif; }
h1 { font-size: 1.5rem; margin: 0.2rem 0; }
h2 { font-size: 1.2rem; margin: 1.6rem 0 0.5rem; border-bottom: 1px solid var(--rule); }
p.subtitle { color: var(--muted); margin-top: 0; }
p.verdict { font-size: 1.1rem; font-weight: 600; padding: 0.6rem 0.8rem;
            border-left: 0.4rem solid var(--accent); background: #f7f9fc; }
.tone-good { border-left-color: var(--good) !important; }
.tone-warn { border-left-color: var(--warn) !important; }
.tone-bad { border-left-color: var(--bad) !important; }
.tone-label { font-weight: 700; }
main p.tone-good, main p.tone-warn, main p.tone-bad { border-left: 0.25rem solid;
       padding-left: 0.6rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 0.3rem; }
h1, h2, h3, p, figcaption { overflow-wrap: anywhere; }
.scroll { overflow-x: auto; margin: 0.5rem 0 1rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding: 0.2rem 0; }
th, td { border-bottom: 1px solid var(--rule); padding: 0.25rem 0.6rem; text-align: left;
         vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 0.9rem; }
pre { background: var(--code); padding: 0.6rem 0.8rem; overflow-x: auto; font-size: 0.85rem;
      white-space: pre; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
.label { font-weight: 600; margin: 0.6rem 0 0.2rem; }
footer { margin-top: 2rem; color: var(--muted); font-size: 0.85rem; }
@media (max-width: 40rem) { body { padding: 0.6rem; font-size: 15px; } h1 { font-size: 1.25rem; } }
@media print {
  body { max-width: none; padding: 0; }
  p.verdict { background: none; }
  .scroll { overflow: visible; }
  figure, table, pre { break-inside: avoid; }
  pre { white-space: pre-wrap; }
}
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="retrysim {{ page.reproduce.version }}">
<title>{{ page.title }}</title>
<style>{{ style }}</style>
</head>
<body>
<header>
<h1>{{ page.title }}</h1>
{% if page.subtitle %}<p class="subtitle">{{ page.subtitle }}</p>{% endif %}
<p class="verdict tone-{{ page.verdict.tone }}" id="verdict">
{{- tone_word(page.verdict.tone) }}{{ page.verdict.text -}}
</p>
</header>
<main>
{% for section in page.sections %}
<section aria-labelledby="s{{ loop.index }}">
<h2 id="s{{ loop.index }}">{{ section.heading }}</h2>
{% for block in section.blocks %}{{ draw(block) }}
{% endfor %}
</section>
{% endfor %}
<section aria-labelledby="reproduce">
<h2 id="reproduce">Reproduce</h2>
<p>{{ page.reproduce.note or same }}</p>
<pre><code>{{ page.reproduce.command }}</code></pre>
<p>Seed: <code>{{ page.reproduce.seed }}</code> &middot; retrysim {{ page.reproduce.version }}</p>
</section>
</main>
<footer>
{% for note in page.notes %}<p>{{ note }}</p>{% endfor %}
<p>Made by retrysim {{ page.reproduce.version }}. This file is self-contained: it loads nothing.</p>
</footer>
</body>
</html>
"""

BLOCKS = {
    Heading: """<h3>{{ b.text }}</h3>""",
    Paragraph: """<p class="tone-{{ b.tone }}">{{ tone_word(b.tone) }}{{ b.text }}</p>""",
    Table: """<div class="scroll"><table>
{% if b.caption %}<caption>{{ b.caption }}</caption>{% endif %}
{% if b.headers %}<thead><tr>
{%- for h in b.headers %}<th scope="col"{{ num(b, loop.index0) }}>{{ h }}</th>{% endfor -%}
</tr></thead>{% endif %}
<tbody>
{%- for row in b.rows %}<tr>
{%- for cell in row %}
{%- if loop.first %}<th scope="row">{{ cell }}</th>
{%- else %}<td{{ num(b, loop.index0) }}>{{ cell }}</td>{% endif %}
{%- endfor %}</tr>
{% endfor %}</tbody>
</table></div>""",
    Figure: """<figure role="group" aria-label="{{ b.caption }}">
{{ svg(b) }}
<figcaption>{{ b.caption }}. <span class="alt">{{ b.alt }}</span></figcaption>
</figure>""",
    Code: """{% if b.label %}<p class="label">{{ b.label }}</p>{% endif %}<pre><code>
{%- for line in b.lines %}{{ line }}
{% endfor %}</code></pre>""",
    Facts: """<div class="scroll"><table>
{% if b.caption %}<caption>{{ b.caption }}</caption>{% endif %}
<thead><tr><th scope="col">setting</th><th scope="col">value</th><th scope="col">from</th>
</tr></thead>
<tbody>{% for name, value, source in b.items %}<tr><th scope="row"><code>{{ name }}</code></th>
<td>{{ value }}</td><td>{{ source }}</td></tr>
{% endfor %}</tbody>
</table></div>""",
}

_TONE_WORDS = {"plain": "", "good": "Pass: ", "warn": "Warning: ", "bad": "Fail: "}


def render_page(page: Page) -> str:
    """The whole page as HTML text (UTF-8 when written; write it atomically)."""
    environment = _environment()
    import markupsafe

    def draw(block: object) -> markupsafe.Markup:
        template = environment.from_string(BLOCKS[type(block)])
        return markupsafe.Markup(template.render(b=block))

    # The style sheet is retrysim's own constant, never user text: inserted as is (escaping
    # would turn its quotes into entities, which CSS does not read).
    style = markupsafe.Markup(_style())
    same = "The same command with the same seed gives the same figures, on any machine."
    template = environment.from_string(TEMPLATE)
    return template.render(page=page, style=style, draw=draw, same=same)


@cache
def _style() -> str:
    """:data:`STYLE` with the tones' colours taken from the figures' palette."""
    from retrysim.plots import palette

    tones = {
        "GOOD": palette.BLUISH_GREEN,
        "WARN": palette.ORANGE,
        "BAD": palette.VERMILLION,
        "ACCENT": palette.BLUE,
    }
    style = STYLE
    for name, colour in tones.items():
        style = style.replace(f": {name};", f": {colour};")
    return style


@cache
def _environment() -> jinja2.Environment:
    import jinja2
    import markupsafe

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.globals["tone_word"] = lambda tone: _TONE_WORDS[tone]
    environment.globals["num"] = lambda table, i: markupsafe.Markup(
        ' class="num"' if i < len(table.numeric) and table.numeric[i] else ""
    )
    # A figure's SVG is the one markup inserted as is: made by retrysim.share.figures from a
    # matplotlib figure, never from user text (its text is drawn as paths and its title escaped).
    environment.globals["svg"] = lambda figure: markupsafe.Markup(figure.svg)
    return environment
