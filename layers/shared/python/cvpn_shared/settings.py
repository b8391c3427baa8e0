"""Settings of the product's functions: one model, read from the environment lazily and cached.

Nothing is read at import time: ``get_settings()`` reads the environment on first use, and tests
call ``get_settings.cache_clear()`` after changing it.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Settings", "get_settings"]


class Settings(BaseModel):
    """What the template passes to every function as environment variables."""

    model_config = ConfigDict(frozen=True)

    requests_table_name: str = Field(default="", description="REQUESTS_TABLE_NAME")
    config_bucket_name: str = Field(default="", description="CONFIG_BUCKET_NAME")
    notifications_topic_arn: str = Field(default="", description="NOTIFICATIONS_TOPIC_ARN")
    config_url_ttl_seconds: int = Field(default=900, ge=60, le=43200, description="CONFIG_URL_TTL_SECONDS")
    endpoint_quota: int = Field(default=5, ge=1, le=1000, description="CLIENT_VPN_ENDPOINT_QUOTA")
    client_connect_function_arn: str = Field(default="", description="CLIENT_CONNECT_FUNCTION_ARN")

    @classmethod
    def from_environment(cls) -> Settings:
        values = {
            name: os.environ[str(info.description)]
            for name, info in cls.model_fields.items()
            if info.description and info.description in os.environ
        }
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, read on first use."""
    return Settings.from_environment()
