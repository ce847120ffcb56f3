"""Reports people share: one self-contained HTML file per command (``--html FILE``).

A command's result becomes a :class:`~retrysim.share.page.Page` (headings, paragraphs, tables,
figures, code lines), which :func:`~retrysim.share.html.render_page` turns into HTML with
everything inline: styles in the page, figures as SVG, no script, font or request of any kind,
so the file opens the same from a CI artifact, an e-mail or a laptop offline.

This layer sits above ``render`` and ``plots`` (it shows their tables and figures) and below
the CLI; the engine and the retry module never import it.
"""
