"""SAM on the local cloud: package local code like ``sam package`` and transform offline.

``package_sam_template`` zips every local ``CodeUri`` / ``ContentUri`` deterministically, uploads the
archives into the embedded S3 and rewrites the template to point at them; it also inlines local
``DefinitionUri`` files of state machines and HTTP APIs (``sam package`` would upload those too, but
moto's CloudFormation only understands inline definitions).

``transform_sam_template`` runs aws-sam-translator with a static managed-policy map, so no IAM call
is made. Nothing here runs ``sam build``: functions ship their own code, layers ship ``python/``.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from cfnlint.decode import decode_str
from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

__all__ = [
    "AWS_MANAGED_POLICY_ARNS",
    "PackagedArtifact",
    "SamError",
    "load_template",
    "package_sam_template",
    "transform_sam_template",
    "zip_directory",
]

# AWS managed policies the product's templates may name in a function's Policies. aws-sam-translator
# would otherwise list them through IAM; the ARNs are stable and public.
AWS_MANAGED_POLICY_ARNS: dict[str, str] = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaVPCAccessExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    "AWSLambdaRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaRole",
    "AWSLambdaENIManagementAccess": "arn:aws:iam::aws:policy/service-role/AWSLambdaENIManagementAccess",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSLambdaExecute": "arn:aws:iam::aws:policy/AWSLambdaExecute",
    "AWSStepFunctionsFullAccess": "arn:aws:iam::aws:policy/AWSStepFunctionsFullAccess",
    "CloudWatchLambdaInsightsExecutionRolePolicy": (
        "arn:aws:iam::aws:policy/CloudWatchLambdaInsightsExecutionRolePolicy"
    ),
    "CloudWatchLogsFullAccess": "arn:aws:iam::aws:policy/CloudWatchLogsFullAccess",
    "AmazonEC2ReadOnlyAccess": "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess",
    "AmazonDynamoDBReadOnlyAccess": "arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess",
    "AmazonSSMReadOnlyAccess": "arn:aws:iam::aws:policy/AmazonSSMReadOnlyAccess",
}

# Directory names a Lambda layer archive may carry at its root (what the runtimes put on their paths).
_LAYER_ROOT_DIRS = ("python", "nodejs", "java", "ruby", "lib", "bin", "extensions")
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class SamError(Exception):
    """The SAM template cannot be packaged or transformed for the local cloud."""


@dataclass(frozen=True)
class PackagedArtifact:
    """One archive uploaded for a function or layer."""

    logical_id: str
    source: Path
    bucket: str
    key: str
    sha256: str


def load_template(path: Path) -> dict[str, Any]:
    """Read a CloudFormation/SAM template (YAML short-form intrinsics included) as plain JSON data."""
    try:
        decoded, matches = decode_str(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SamError(f"cannot read template {path}: {error}") from error
    if decoded is None:
        messages = "; ".join(str(match) for match in matches or [])
        raise SamError(f"cannot parse template {path}: {messages}")
    # cfn-lint returns its own dict/str subclasses carrying line marks; JSON makes them plain.
    plain: dict[str, Any] = json.loads(json.dumps(decoded))
    return plain


def zip_directory(directory: Path) -> bytes:
    """Zip ``directory`` deterministically (sorted entries, fixed timestamps, fixed permissions)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if "__pycache__" in relative.parts or path.suffix == ".pyc" or not path.is_file():
                continue
            info = zipfile.ZipInfo(relative.as_posix(), date_time=_FIXED_ZIP_TIME)
            executable = os.access(path, os.X_OK)
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _is_local_uri(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith("s3://")


def _merged_property(resource: dict[str, Any], globals_section: dict[str, Any], name: str) -> Any:
    properties = resource.get("Properties") or {}
    if name in properties:
        return properties[name]
    return globals_section.get(name)


def _load_definition_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SamError(f"cannot read definition file {path}: {error}") from error
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.safe_load(text)


class _ArtifactUploader:
    """Zips directories and uploads each distinct archive once into the artifacts bucket."""

    def __init__(self, s3_client: Any, bucket: str, prefix: str, build_dir: Path) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._prefix = prefix
        self._build_dir = build_dir
        self._bucket_ready = False

    def upload(self, logical_id: str, source: Path) -> PackagedArtifact:
        if source.is_file() and source.suffix == ".zip":
            body = source.read_bytes()
        elif source.is_dir():
            body = zip_directory(source)
        else:
            raise SamError(f"{logical_id}: code location {source} is neither a directory nor a .zip file")
        digest = hashlib.sha256(body).hexdigest()
        key = f"{self._prefix}/{digest}.zip"
        self._build_dir.mkdir(parents=True, exist_ok=True)
        (self._build_dir / f"{logical_id}-{digest[:12]}.zip").write_bytes(body)
        self._ensure_bucket()
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)
        return PackagedArtifact(logical_id, source, self._bucket, key, digest)

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        existing = {bucket["Name"] for bucket in self._s3.list_buckets().get("Buckets", [])}
        if self._bucket not in existing:
            self._s3.create_bucket(Bucket=self._bucket)
        self._bucket_ready = True


def package_sam_template(
    template: dict[str, Any],
    *,
    template_dir: Path,
    s3_client: Any,
    bucket: str,
    prefix: str,
    build_dir: Path,
) -> tuple[dict[str, Any], list[PackagedArtifact]]:
    """Return a copy of ``template`` whose local code and definitions are packaged, plus the uploads.

    - ``AWS::Serverless::Function`` ``CodeUri`` (own or from Globals) -> zipped dir in S3.
    - ``AWS::Serverless::LayerVersion`` ``ContentUri`` -> zipped dir in S3; the dir must already hold
      ``python/`` (or another runtime root); a dir with only requirements.txt is refused.
    - ``AWS::Serverless::StateMachine`` / ``AWS::Serverless::HttpApi`` local ``DefinitionUri`` -> the
      file's content inlined as ``Definition`` / ``DefinitionBody``.
    """
    packaged = copy.deepcopy(template)
    uploader = _ArtifactUploader(s3_client, bucket, prefix, build_dir)
    artifacts: list[PackagedArtifact] = []
    globals_section = packaged.get("Globals") or {}
    function_globals = globals_section.get("Function") or {}
    for logical_id, resource in (packaged.get("Resources") or {}).items():
        resource_type = resource.get("Type")
        properties = resource.setdefault("Properties", {})
        if resource_type == "AWS::Serverless::Function":
            if _merged_property(resource, function_globals, "PackageType") == "Image":
                raise SamError(f"{logical_id}: PackageType Image is not supported by the local cloud")
            if properties.get("InlineCode") is not None:
                continue
            code_uri = _merged_property(resource, function_globals, "CodeUri")
            if code_uri is None:
                raise SamError(f"{logical_id}: AWS::Serverless::Function has no CodeUri or InlineCode")
            if _is_local_uri(code_uri):
                artifact = uploader.upload(logical_id, (template_dir / code_uri).resolve())
                properties["CodeUri"] = {"Bucket": artifact.bucket, "Key": artifact.key}
                artifacts.append(artifact)
        elif resource_type == "AWS::Serverless::LayerVersion":
            content_uri = properties.get("ContentUri")
            if _is_local_uri(content_uri):
                layer_dir = (template_dir / content_uri).resolve()
                _check_layer_dir(logical_id, layer_dir)
                artifact = uploader.upload(logical_id, layer_dir)
                properties["ContentUri"] = {"Bucket": artifact.bucket, "Key": artifact.key}
                artifacts.append(artifact)
        elif resource_type == "AWS::Serverless::StateMachine":
            _inline_definition_uri(logical_id, properties, template_dir, into="Definition")
        elif resource_type == "AWS::Serverless::HttpApi":
            _inline_definition_uri(logical_id, properties, template_dir, into="DefinitionBody")
    return packaged, artifacts


def _inline_definition_uri(
    logical_id: str, properties: dict[str, Any], template_dir: Path, *, into: str
) -> None:
    """Replace a local ``DefinitionUri`` with the file's content under ``into`` (none: nothing to do)."""
    definition_uri = properties.get("DefinitionUri")
    if definition_uri is not None:
        if not _is_local_uri(definition_uri):
            raise SamError(f"{logical_id}: DefinitionUri must be a local file on the local cloud")
        properties[into] = _load_definition_file(template_dir / definition_uri)
        del properties["DefinitionUri"]


def _check_layer_dir(logical_id: str, layer_dir: Path) -> None:
    if not layer_dir.is_dir():
        if layer_dir.suffix == ".zip" and layer_dir.is_file():
            return
        raise SamError(f"{logical_id}: layer ContentUri {layer_dir} is not a directory")
    has_root = any((layer_dir / name).is_dir() for name in _LAYER_ROOT_DIRS)
    if not has_root and (layer_dir / "requirements.txt").exists():
        raise SamError(
            f"{logical_id}: layer {layer_dir} has only requirements.txt; the local cloud does not run "
            "pip (no `sam build`). Ship the layer's code under python/ instead."
        )


def transform_sam_template(
    template: dict[str, Any],
    *,
    region: str,
    account_id: str,
    stack_name: str,
    parameter_values: dict[str, Any] | None = None,
    managed_policy_arns: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Translate a (packaged) SAM template to plain CloudFormation, offline.

    A template without the SAM transform is returned unchanged (as a copy).
    """
    transform = template.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    if "AWS::Serverless-2016-10-31" not in transforms:
        return copy.deepcopy(template)
    other = [name for name in transforms if name not in (None, "AWS::Serverless-2016-10-31")]
    if other:
        raise SamError(
            f"transforms other than AWS::Serverless-2016-10-31 are not supported: {other}"
            " (AWS::LanguageExtensions: expand it first with localcloud.language_extensions)"
        )
    policy_map = dict(AWS_MANAGED_POLICY_ARNS if managed_policy_arns is None else managed_policy_arns)
    get_policy_map: Callable[[], dict[str, str]] = lambda: policy_map  # noqa: E731
    values: dict[str, Any] = {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": "aws",
        "AWS::StackName": stack_name,
        **(parameter_values or {}),
    }
    # The translator records usage metrics; a dummy publisher keeps them local (and quiet).
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    translator = Translator(
        None, Parser(), boto_session=boto3.session.Session(region_name=region), metrics=metrics
    )
    try:
        transformed: dict[str, Any] = translator.translate(
            copy.deepcopy(template), parameter_values=values, get_managed_policy_map=get_policy_map
        )
    except Exception as error:  # samtranslator raises several unrelated exception types
        raise SamError(f"SAM transform failed: {error}") from error
    finally:
        metrics.publish()
    return json.loads(json.dumps(transformed))
