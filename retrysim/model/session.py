"""What a shell session holds: the loaded scenario, its edits, the last two runs, and whether
the edits are saved.

Kept apart from the commands so the prompt (its toolbar, the save question on exit) and the
commands read one source of truth, and so saving is one function whichever way it is asked for.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrysim.model.scenario import Scenario


@dataclass
class Loaded:
    """A scenario as loaded, and as edited since.

    ``path`` and ``text`` are the user's file and its text when the scenario came from one (a
    bundled scenario is not the user's file: both are None). ``base`` is the validated data as
    loaded, ``data`` the data now, ``saved`` the data as last loaded or saved.
    """

    name: str
    source: str
    path: Path | None
    text: str | None
    base: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    saved: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.data:
            self.data = copy.deepcopy(self.base)
        if not self.saved:
            self.saved = copy.deepcopy(self.base)

    @property
    def dirty(self) -> bool:
        """Whether the scenario changed since it was loaded or last saved."""
        return self.data != self.saved

    def default_target(self) -> Path:
        """Where ``save`` without a name writes: the loaded file, or ``NAME.toml`` here."""
        return self.path if self.path is not None else Path(f"{self.name}.toml")

    def toml(self) -> str:
        """The scenario now as TOML: the loaded file with only the changed values rewritten
        (its comments and layout kept), or written fresh when there is no file of the user's."""
        from tomlkit.exceptions import TOMLKitError

        from retrysim.model.toml_edit import dumps, update

        if self.text is not None:
            try:
                return _crlf_like(self.text, update(self.text, self.base, self.data))
            except TOMLKitError:  # a file tomllib read but tomlkit cannot: lose layout, not data
                pass
        return dumps(self.data)

    def save(self, target: Path) -> None:
        """Write the scenario to ``target`` atomically and remember it as saved."""
        from retrysim.output import write_text

        write_text(target, self.toml())
        self.saved = copy.deepcopy(self.data)


def _crlf_like(original: str, text: str) -> str:
    """``text`` with the lines tomlkit added ended in CRLF when ``original`` ends every line
    so (tomlkit keeps the old lines' endings but ends the lines it adds in LF)."""
    if "\r\n" in original and "\n" not in original.replace("\r\n", ""):
        return re.sub(r"(?<!\r)\n", "\r\n", text)
    return text


def load(arg: str, scenario: Scenario) -> Loaded:
    """The session of ``scenario``, loaded from ``arg`` (a bundled name or a path): the caller
    loads and checks it (the CLI refuses, naming the file, one this machine cannot hold)."""
    from retrysim.model.library import bundled_scenarios, resolve

    path: Path | None = resolve(arg)
    text: str | None = None
    if path in bundled_scenarios().values():
        path = None  # the package's file: saving must never write into it, nor copy its comments
    else:
        try:
            # bytes, decoded: read_text would turn the file's CRLFs into LFs on the way in
            text = path.read_bytes().decode("utf-8") if path is not None else None
        except (OSError, UnicodeDecodeError):  # it loaded a moment ago; write fresh if it went
            text = None
    return Loaded(
        name=scenario.name,
        source=arg,
        path=path,
        text=text,
        base=scenario.model_dump(mode="python"),
    )
