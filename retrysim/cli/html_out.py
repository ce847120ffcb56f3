"""``--html FILE`` on compare, sweep and tune: the page built and written after the report.

The commands stay thin: each hands its inputs and results here once its terminal report (or
``--json``) is out, so a figure that fails to draw never loses the report. The command line
in the page's Reproduce block is rebuilt from what Click parsed: every option the user gave
(the context's ``get_parameter_source``), in the order the command declares them, except
those that only show, save or place the work (``--html``, ``--out``, ``--json``,
``--workers``, ...), whose results are identical. Rebuilt rather than read from
``sys.argv``, it is the same under ``python -m retrysim``, a wrapper script or a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrysim.safe import markup

if TYPE_CHECKING:
    import typer

    from retrysim.share.page import Page

#: Options that do not change what a command computes: left out of the Reproduce line.
NOT_SHAPING = frozenset(
    {
        "html",
        "out",
        "as_json",
        "plot",
        "quiet",
        "workers",
        "executor",
        "address",
        "yes",
        "resume",
        "write_env",
        "junit",
    }
)


def command_words(context: typer.Context, command: str) -> list[str]:
    """``retrysim COMMAND ARGUMENTS... OPTIONS...`` as the user gave them (see the module)."""
    words = ["retrysim", command]
    options: list[str] = []
    for param in context.command.params:
        name = param.name
        if name is None or name in NOT_SHAPING:
            continue
        source = context.get_parameter_source(name)
        if source is None or source.name == "DEFAULT":
            continue
        value = context.params.get(name)
        if param.param_type_name == "argument":
            words += _items(value)
        elif getattr(param, "is_flag", False):
            flag = param.opts[0] if value is True else next(iter(param.secondary_opts), None)
            options += [flag] if flag is not None else []
        else:
            for item in _items(value):
                options += [param.opts[0], item]
    return words + options


def _items(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [str(value)]


def write(path: Path, page: Page, console: Any) -> None:
    """Write ``page`` atomically and say so (as ``--plot`` and ``--out`` do; not with
    ``--json``, whose standard output is the document alone)."""
    from retrysim.share.write import write_page

    write_page(page, path)
    if console is not None:
        console.print(f"[dim]wrote {markup(path)}[/]")


def comparison(
    context: typer.Context,
    command: str,
    source: str,
    base: Any,
    seeds: list[int],
    results: list[Any],
    names: list[str],
    settings: Any,
    setting_sources: dict[str, str],
    run_arguments: Sequence[str],
    fixed: Sequence[str] = (),
    profile: str | None = None,
) -> Any:
    """The :class:`~retrysim.share.variants.Comparison` of a compare or sweep."""
    from retrysim.share.variants import Comparison

    return Comparison(
        base=base,
        source=source,
        seeds=seeds,
        results=results,
        names=names,
        words=command_words(context, command),
        arguments=list(run_arguments),
        settings=settings,
        setting_sources=setting_sources,
        fixed=tuple(fixed),
        flagged={"policy.profile": "--profile"} if profile is not None else {},
    )
