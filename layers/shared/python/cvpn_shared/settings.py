"""Settings of the product's functions: one model, read from the environment lazily and cached."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What the template passes to every function as environment variables."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    requests_table_name: str = Field(default="", alias="REQUESTS_TABLE_NAME")
    config_bucket_name: str = Field(default="", alias="CONFIG_BUCKET_NAME")
    notifications_topic_arn: str = Field(default="", alias="NOTIFICATIONS_TOPIC_ARN")
    config_url_ttl_seconds: int = Field(default=900, ge=60, le=43200, alias="CONFIG_URL_TTL_SECONDS")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, read on first use (tests call ``get_settings.cache_clear()`` after changing env)."""
    return Settings()
