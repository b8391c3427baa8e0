"""Data access to the network profiles: one JSON parameter per profile in SSM Parameter Store."""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.access.profiles import NetworkProfile, ProfileInvalid, parse_profile

__all__ = ["ParameterStoreProfiles"]

logger = logging.getLogger(__name__)


class ParameterStoreProfiles:
    """Profiles under ``path`` (``/<stack>/profiles``): the parameter's last segment is the profile name."""

    def __init__(self, ssm_client: Any, path: str) -> None:
        self._ssm = ssm_client
        self._path = "/" + path.strip("/")

    def _parameter_name(self, name: str) -> str:
        return f"{self._path}/{name}"

    def list_profiles(self) -> list[NetworkProfile]:
        profiles: list[NetworkProfile] = []
        paginator = self._ssm.get_paginator("get_parameters_by_path")
        for page in paginator.paginate(Path=self._path, Recursive=False, WithDecryption=True):
            for parameter in page.get("Parameters", []):
                name = str(parameter["Name"]).rsplit("/", 1)[-1]
                try:
                    profiles.append(parse_profile(name, _json(parameter["Value"])))
                except ProfileInvalid as error:
                    logger.error("left out of the profile list: %s", error)
        return sorted(profiles, key=lambda profile: profile.name)

    def get_profile(self, name: str) -> NetworkProfile | None:
        try:
            parameter = self._ssm.get_parameter(Name=self._parameter_name(name), WithDecryption=True)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise
        return parse_profile(name, _json(parameter["Parameter"]["Value"]))


def _json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return None
