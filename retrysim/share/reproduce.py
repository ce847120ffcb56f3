"""How a shared page says it can be made again: the command, the seeds, retrysim's version.

The command is rebuilt from the options the command parsed (as the result documents'
``arguments`` are, :func:`retrysim.cli.common.rerun_arguments`), not read from ``sys.argv``:
the same words whether the command ran from a shell, ``python -m retrysim`` or a test, and
only the options that shape the result (never ``--html``, ``--out`` or ``--json``, which
show or save it), so two identical runs give byte-identical pages. Every word is quoted for a
POSIX shell, so a path with a space or a quote in it stays one word when pasted.
"""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Sequence

from retrysim.safe import visible
from retrysim.share.page import Reproduce

#: A run of this many consecutive seeds or more is written ``first..last`` rather than listed.
SEED_RANGE = 4


def seeds_text(seeds: Sequence[int]) -> str:
    """``23``, ``23, 24, 25`` or ``23..52 (30 seeds)``: every seed the page's figures used."""
    if not seeds:
        return "none"
    consecutive = all(b == a + 1 for a, b in itertools.pairwise(seeds))
    if consecutive and len(seeds) >= SEED_RANGE:
        return f"{seeds[0]}..{seeds[-1]} ({len(seeds)} seeds)"
    return ", ".join(str(seed) for seed in seeds)


def reproduce(words: Sequence[str], seeds: Sequence[int]) -> Reproduce:
    """The Reproduce block of a page: ``words`` (``retrysim``, the command, its arguments) as
    one shell line safe to show, the seeds and the installed version."""
    import retrysim

    return Reproduce(
        command=visible(shlex.join(words)),
        seed=seeds_text(seeds),
        version=str(retrysim.__version__),
    )


def option_words(options: Sequence[tuple[str, object]]) -> list[str]:
    """``(option, value)`` pairs as command-line words: a value None or False is left out, True
    is the bare flag, a list repeats the option once per item."""
    words: list[str] = []
    for option, value in options:
        if value is None or value is False:
            continue
        if value is True:
            words.append(option)
        elif isinstance(value, list | tuple):
            for item in value:
                words += [option, str(item)]
        else:
            words += [option, str(value)]
    return words
