"""``retrysim lab``: a live Textual screen for tuning a scenario's retry settings.

:mod:`retrysim.lab.model` holds the session's state and :mod:`retrysim.lab.charts` draws the
figures as text, both without Textual; :mod:`retrysim.lab.widgets` and :mod:`retrysim.lab.app`
are the screen. Textual (the ``retrysim[lab]`` extra) is imported only by those two, and only
when ``retrysim lab`` runs.
"""
