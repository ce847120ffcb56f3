"""Tests written for mutants of ``retrysim/retry/hedge.py`` that its own tests let survive
(a full mutation run, ``python scripts/mutate.py --module hedge``): each pins a behaviour a
plausible wrong edit would change."""

from __future__ import annotations
