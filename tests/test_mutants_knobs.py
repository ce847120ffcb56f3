"""Tests written for mutants of ``retrysim/retry/knobs.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module knobs``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations
