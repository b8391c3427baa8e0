"""Step Functions on the local cloud: moto's ASL interpreter, made to follow emulated time.

moto 5.2.5 runs real definitions with the LocalStack ASL interpreter (``execute_state_machine``).
Out of the box it waits in wall time (Wait states, Retry intervals) and has no JSONata evaluator.
``install()`` fixes both:

- Wait states and Retry intervals last their duration in *emulated* seconds of the current
  :mod:`localcloud.clock`, so a 240 s Wait takes 4 real seconds at time scale 60. A stopped execution
  still interrupts a Wait at once. A Wait until a ``Timestamp`` (or ``TimestampPath``) waits until the
  emulated clock reaches that UTC time (moto's own compares it with the machine's local time).
- JSONata expressions (``QueryLanguage: JSONata``) evaluate with jsonata-python, the same language
  the service runs, without the JVM bridge moto ships for LocalStack; ``$now()`` and ``$millis()``
  read the emulated clock.

- StartExecution without a name gets a generated one (a UUID), as on AWS; moto's interpreter
  backend would otherwise name every such execution "None" and refuse the second one.
- The Step Functions service integration (``arn:aws:states:::states:startExecution[.sync[:2]]``)
  works: moto 5.2.5 ships the interpreter without the request/response normalisation of the AWS SDK
  shapes, so ``StateMachineArn`` never became ``stateMachineArn`` (a ``States.Runtime`` error on every
  start) and the answer kept boto's ``executionArn`` where the ``.sync`` poller reads ``ExecutionArn``.
  The SDK's service model now maps both ways, as the service does; dates become epoch milliseconds.
- SendTaskFailure keeps its ``cause`` (moto's response handler dropped it).
- A Choice rule on a path that is absent (``IsPresent: false`` is how a definition asks) is quiet:
  the interpreter logged each such miss as an ERROR before the rule caught it, noise in every
  ``cvpn local up`` and demo whose definitions branch on an optional field.
- A task's ``TimeoutSeconds``/``TimeoutSecondsPath`` (a ``waitForTaskToken`` task waiting for its
  callback included) counts emulated seconds, so a task timing out after a day does so after a day
  of the emulated clock (or at once after ``clock.advance``), not after a real day.

Measured quirk kept in mind by the product's definitions: a JSONPath such as ``$.X[0].Y`` applied to
an SDK-integration response can come back as a one-element list; prefer a Lambda task or
``States.ArrayGetItem`` when a scalar is needed.
"""

from __future__ import annotations

import datetime
import logging
import threading
import uuid
from typing import Any

from localcloud.clock import get_clock

__all__ = ["install", "installed"]

_lock = threading.Lock()
_installed = False
_jsonata: type | None = None


def _jsonata_class() -> type:
    global _jsonata
    if _jsonata is None:
        _jsonata = _emulated_now_jsonata()
    return _jsonata


class _EmulatedTime:
    """Stands in for the ``time`` module inside the retrier: ``sleep`` counts emulated seconds."""

    def __init__(self, real_time_module: Any) -> None:
        self._real = real_time_module

    def sleep(self, seconds: float) -> None:
        get_clock().sleep(float(seconds))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
    """A Wait state's pause in emulated time, ended early when the execution stops."""
    clock = get_clock()
    deadline = clock.timestamp() + max(0, wait_seconds)
    while env.is_running():
        remaining = deadline - clock.timestamp()
        if remaining <= 0:
            return
        # Short real slices so a change of time scale or clock.advance() is noticed promptly.
        env.program_state_event.wait(min(clock.to_real_seconds(remaining), 0.05))


def _wait_emulated(event: threading.Event, wait: Any, timeout: float | None) -> bool:
    """``event.wait(timeout)`` (``wait`` being the unpatched method) with ``timeout`` in emulated
    seconds; True when the event was set in time."""
    if timeout is None:
        return bool(wait(event))
    clock = get_clock()
    deadline = clock.timestamp() + max(0.0, float(timeout))
    while True:
        remaining = deadline - clock.timestamp()
        if remaining <= 0:
            return event.is_set()
        # Short real slices so a change of time scale or clock.advance() is noticed promptly.
        if wait(event, min(clock.to_real_seconds(remaining), 0.1)):
            return True


class _EmulatedTimeoutEvent(threading.Event):
    """The event a task state's timeout waits on: ``wait`` counts emulated seconds."""

    def wait(self, timeout: float | None = None) -> bool:
        return _wait_emulated(self, threading.Event.wait, timeout)


class _ThreadingWithEmulatedTimeouts:
    """Stands in for the ``threading`` module inside ``execute_state``: its events time out in
    emulated seconds."""

    Event = _EmulatedTimeoutEvent

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)


def _callback_wait(self: Any, timeout: float | None = None) -> Any:
    """``CallbackEndpoint.wait``: the task token's outcome, waiting ``timeout`` emulated seconds."""
    _wait_emulated(self._notify_event, threading.Event.wait, timeout)
    return self._outcome


def _seconds_until_timestamp(self: Any, env: Any) -> int:
    """A Wait state's ``Timestamp``/``TimestampPath``: seconds from emulated now to that UTC time."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )

    self.string.eval(env=env)
    timestamp_str: str = env.stack.pop()
    timestamp = self._from_timestamp_string(timestamp=timestamp_str)
    if timestamp is None:
        raise FailureEventException(self._create_failure_event(env, timestamp_str))
    return int(timestamp.replace(tzinfo=datetime.UTC).timestamp() - get_clock().timestamp())


def _emulated_now_jsonata() -> type:
    """jsonata-python's evaluator, with the time ``$now()`` and ``$millis()`` answer (captured once per
    evaluation, as JSONata does) taken from the emulated clock."""
    import jsonata

    class EmulatedNowJsonata(jsonata.Jsonata):  # type: ignore[misc]
        @property  # type: ignore[misc]
        def timestamp(self) -> int:
            return self._emulated_timestamp

        @timestamp.setter
        def timestamp(self, _wall_clock_millis: int) -> None:
            self._emulated_timestamp = get_clock().millis()

    return EmulatedNowJsonata


def _eval_jsonata(expression: str) -> Any:
    from moto.stepfunctions.parser.asl.jsonata.jsonata import JSONataException

    try:
        return _jsonata_class()(expression).evaluate(None)
    except Exception as error:  # jsonata raises its own JException and plain errors alike
        raise JSONataException("States.QueryEvaluationError", str(error)) from error


def _named_start_execution(original: Any) -> Any:
    def start_execution(
        self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    start_execution.__wrapped__ = original  # type: ignore[attr-defined]
    return start_execution


def _sdk_operation(service_name: str, action: str) -> Any:
    """botocore's operation model of ``action`` (snake or Pascal case) in ``service_name``."""
    import botocore.session
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    model = botocore.session.get_session().get_service_model(service_name)
    wanted = camel_to_snake_case(action)
    for operation in model.operation_names:
        if camel_to_snake_case(operation) == wanted:
            return model.operation_model(operation)
    raise KeyError(f"{service_name} has no operation {action}")


def _normalised_sfn_parameters(original: Any) -> Any:
    def _normalise_parameters(
        self: Any, parameters: dict[str, Any], boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        original(self, parameters, boto_service_name, service_action_name)
        operation = _sdk_operation(
            self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
        )
        if operation.input_shape is not None:
            self._to_boto_request(parameters, operation.input_shape)

    return _normalise_parameters


def _normalise_sfn_response(
    self: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None
) -> None:
    operation = _sdk_operation(
        self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
    )
    if operation.output_shape is not None:
        self._from_boto_response(response, operation.output_shape)
    if isinstance(response, dict):  # timestamps reach the state's output as epoch milliseconds
        for key, value in response.items():
            if isinstance(value, datetime.datetime):
                response[key] = int(value.timestamp() * 1000)


def _send_task_failure_with_cause(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    self.stepfunction_backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


_choice_variable = threading.local()


class _QuietInsideChoiceVariables(logging.Filter):
    """Drops the interpreter's error lines logged while a Choice rule reads its variable: a missing
    path there is an answer (the rule catches it), not a failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_choice_variable, "depth", 0)


def _quiet_variable(original: Any) -> Any:
    def _eval_body(self: Any, env: Any) -> None:
        _choice_variable.depth = getattr(_choice_variable, "depth", 0) + 1
        try:
            original(self, env)
        finally:
            _choice_variable.depth -= 1

    return _eval_body


def install() -> None:
    """Patch moto's ASL interpreter for emulated time and JSONata. Safe to call more than once."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.stepfunctions.parser.asl.component import eval_component
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.choice.comparison import variable
        from moto.stepfunctions.parser.asl.component.state.exec import execute_state
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_sfn,
        )
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
            timestamp as wait_timestamp,
        )
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
        from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend
        from moto.stepfunctions.responses import StepFunctionResponse

        wait_function.WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
        wait_timestamp.Timestamp._get_wait_seconds = _seconds_until_timestamp  # type: ignore[method-assign]
        retrier_decl.time = _EmulatedTime(retrier_decl.time)  # type: ignore[assignment]
        execute_state.threading = _ThreadingWithEmulatedTimeouts()  # type: ignore[assignment]
        CallbackEndpoint.wait = _callback_wait  # type: ignore[method-assign]
        moto_jsonata._eval_jsonata = _eval_jsonata
        StepFunctionsParserBackend.start_execution = _named_start_execution(  # type: ignore[method-assign]
            StepFunctionsParserBackend.start_execution
        )
        sfn_service = state_task_service_sfn.StateTaskServiceSfn
        sfn_service._normalise_parameters = _normalised_sfn_parameters(  # type: ignore[method-assign]
            sfn_service._normalise_parameters
        )
        sfn_service._normalise_response = _normalise_sfn_response  # type: ignore[method-assign]
        StepFunctionResponse.send_task_failure = _send_task_failure_with_cause  # type: ignore[method-assign]
        variable.Variable._eval_body = _quiet_variable(variable.Variable._eval_body)  # type: ignore[method-assign]
        eval_component.LOG.addFilter(_QuietInsideChoiceVariables())
        _installed = True


def installed() -> bool:
    return _installed
