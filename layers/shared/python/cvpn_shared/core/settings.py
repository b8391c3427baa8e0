"""How an area's settings are read: a frozen model whose fields name their environment variable.

Each area (provisioning, access, monitoring) has a settings model of its own with only the
variables its functions use, read on first use and cached (``get_settings()`` in the area's
``settings`` module); tests call ``get_settings.cache_clear()`` after changing the environment.
Nothing is read at import time.
"""

from __future__ import annotations

import os
from typing import Self

from pydantic import BaseModel, ConfigDict

__all__ = ["EnvironmentSettings", "split_list"]


class EnvironmentSettings(BaseModel):
    """A settings model: each field's ``description`` is the environment variable it is read from."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_environment(cls) -> Self:
        values = {
            name: os.environ[str(info.description)]
            for name, info in cls.model_fields.items()
            if info.description and info.description in os.environ
        }
        return cls.model_validate(values)


def split_list(value: str) -> list[str]:
    """A comma-separated setting as its non-empty, stripped items."""
    return [item.strip() for item in value.split(",") if item.strip()]
