"""The scenario layer: what a scenario is (pydantic models), how it is read, written and
described."""
