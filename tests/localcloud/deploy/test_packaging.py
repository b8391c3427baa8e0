"""Packaging SAM code for the local cloud: deterministic archives, layers that ship their code."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from localcloud.sam import SamError, package_sam_template, zip_directory


def _tree(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "app.py").write_text("def handler(event, context):\n    return event\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    return root


def test_zip_is_deterministic_and_leaves_out_bytecode(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    first = zip_directory(source)
    os.utime(source / "app.py", (1_000_000_000, 1_000_000_000))
    second = zip_directory(source)
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names == ["app.py", "pkg/__init__.py"]


class _RecordingS3:
    """Just enough of an S3 client to see what packaging uploads."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.buckets: set[str] = set()

    def list_buckets(self) -> dict[str, list[dict[str, str]]]:
        return {"Buckets": [{"Name": name} for name in self.buckets]}

    def create_bucket(self, Bucket: str) -> None:
        self.buckets.add(Bucket)

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:
        self.objects[(Bucket, Key)] = Body


def test_globals_code_uri_and_layers_are_packaged(tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    (tmp_path / "layer" / "python").mkdir(parents=True)
    (tmp_path / "layer" / "python" / "shared.py").write_text("X = 1\n")
    template: dict[str, Any] = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Globals": {"Function": {"CodeUri": "src/"}},
        "Resources": {
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "app.handler"}},
            "Inline": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"InlineCode": "x", "Handler": "i.h"},
            },
            "Layer": {"Type": "AWS::Serverless::LayerVersion", "Properties": {"ContentUri": "layer"}},
        },
    }
    s3 = _RecordingS3()
    packaged, artifacts = package_sam_template(
        template,
        template_dir=tmp_path,
        s3_client=s3,
        bucket="artifacts",
        prefix="stack",
        build_dir=tmp_path / "b",
    )
    code_uri = packaged["Resources"]["Fn"]["Properties"]["CodeUri"]
    assert code_uri["Bucket"] == "artifacts" and code_uri["Key"].startswith("stack/")
    assert "CodeUri" not in packaged["Resources"]["Inline"]["Properties"]
    assert {artifact.logical_id for artifact in artifacts} == {"Fn", "Layer"}
    layer_key = packaged["Resources"]["Layer"]["Properties"]["ContentUri"]["Key"]
    assert zipfile.ZipFile(io.BytesIO(s3.objects[("artifacts", layer_key)])).namelist() == [
        "python/shared.py"
    ]
    assert template["Globals"]["Function"]["CodeUri"] == "src/"  # the input is not modified


def test_layer_with_only_requirements_is_refused(tmp_path: Path) -> None:
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "requirements.txt").write_text("requests\n")
    template = {
        "Resources": {
            "Deps": {"Type": "AWS::Serverless::LayerVersion", "Properties": {"ContentUri": "layer"}}
        }
    }
    with pytest.raises(SamError, match=r"Deps: .*requirements.txt.*python/"):
        package_sam_template(
            template,
            template_dir=tmp_path,
            s3_client=_RecordingS3(),
            bucket="b",
            prefix="p",
            build_dir=tmp_path,
        )
