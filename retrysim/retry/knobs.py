"""The base of a resilience mechanism's table of knobs (``[policy.breaker]``, ...)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class Knobs(BaseModel):
    """A mechanism's knobs. A knob left unset falls back to its ``RETRY__*`` setting.

    Only the knobs set explicitly are serialised, so a scenario dumped and parsed again (as
    ``--set`` and the shell do) still tells the knobs the user gave from those left to the
    settings. A resolved table has every knob set, so it dumps whole.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {name: value for name, value in data.items() if name in self.model_fields_set}
