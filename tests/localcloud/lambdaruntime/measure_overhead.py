"""Measure the local Lambda runtime's warm invoke overhead and cold start (not a test).

Run: ``.venv/bin/python -m tests.localcloud.lambdaruntime.measure_overhead``. Prints median and p95
of warm round trips with a no-op handler (direct, through boto3 + moto in-process, and through a moto
server on loopback; directly also with its logs written to CloudWatch Logs) and the init duration of a
handler that imports boto3.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import time
import zipfile
from collections.abc import Callable

from tests.fixtures import FIXTURES as SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "lambdaruntime"
ROUNDS = 200


def _summary(label: str, samples_ms: list[float]) -> None:
    ordered = sorted(samples_ms)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(f"{label:<44} median {statistics.median(ordered):6.2f} ms   p95 {p95:6.2f} ms   (n={len(ordered)})")


def _time(call: Callable[[], object], rounds: int = ROUNDS) -> list[float]:
    call()  # warm up (cold start excluded)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    import logging

    import boto3
    from moto import mock_aws
    from moto.server import ThreadedMotoServer

    from localcloud.lambdaruntime import (
        CloudWatchLogsWriter,
        FunctionSpec,
        LambdaRuntime,
        install,
        select_simple_lambda_backend,
    )

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    arn = "arn:aws:lambda:us-east-1:123456789012:function:{}"
    with LambdaRuntime() as runtime:
        runtime.register(FunctionSpec("noop", arn.format("noop"), "app.record_event", FIXTURES / "functions"))
        runtime.register(
            FunctionSpec("describe", arn.format("describe"), "app.describe_worker", FIXTURES / "functions")
        )
        _summary(
            "direct LambdaRuntime.invoke (tiny handler)", _time(lambda: runtime.invoke("describe", b"{}"))
        )
        writer = CloudWatchLogsWriter()
        runtime.log_sink = writer
        _summary("  the same, logging to CloudWatch Logs", _time(lambda: runtime.invoke("describe", b"{}")))
        writer.close()
        runtime.log_sink = None

        cold = []
        for index in range(5):
            name = f"sdk-{index}"
            runtime.register(FunctionSpec(name, arn.format(name), "app.lambda_handler", FIXTURES / "sdk"))
            started = time.perf_counter()
            result = runtime.invoke(name, b"{}")
            cold.append(((time.perf_counter() - started) * 1000, result.init_duration_ms or 0.0))
        print(
            "cold start, handler importing boto3:          "
            f"round trip median {statistics.median(c[0] for c in cold):.0f} ms, "
            f"Init Duration median {statistics.median(c[1] for c in cold):.0f} ms"
        )

        install(runtime)
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w") as archive:
            archive.write(FIXTURES / "functions" / "app.py", "app.py")
        role = "arn:aws:iam::123456789012:role/fn"

        def create(client: object) -> None:
            client.create_function(  # type: ignore[attr-defined]
                FunctionName="moto-fn",
                Runtime="python3.13",
                Role=role,
                Handler="app.describe_worker",
                Code={"ZipFile": zipped.getvalue()},
            )

        with mock_aws(config={"lambda": {"use_docker": False}, "iam": {"load_aws_managed_policies": False}}):
            boto3.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
            client = boto3.client("lambda")
            create(client)
            direct_baseline = _time(lambda: client.get_function(FunctionName="moto-fn"))
            invoke = _time(lambda: client.invoke(FunctionName="moto-fn", Payload=b"{}")["Payload"].read())
            _summary("boto3 -> mock_aws GetFunction (no runtime)", direct_baseline)
            _summary("boto3 -> mock_aws Invoke -> runtime", invoke)

        select_simple_lambda_backend()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            boto3.client("iam", endpoint_url=endpoint).create_role(
                RoleName="fn", AssumeRolePolicyDocument="{}"
            )
            client = boto3.client("lambda", endpoint_url=endpoint)
            create(client)
            baseline = _time(lambda: client.get_function(FunctionName="moto-fn"))
            invoke = _time(
                lambda: json.loads(client.invoke(FunctionName="moto-fn", Payload=b"{}")["Payload"].read())
            )
            _summary("boto3 -> moto server GetFunction (no runtime)", baseline)
            _summary("boto3 -> moto server Invoke -> runtime", invoke)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
