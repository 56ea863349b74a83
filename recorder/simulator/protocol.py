"""What every simulated operation shares: the modeled error, input validation, limits.

A leaf of the simulator: `api` (the operations), `model` (the Account) and
`fixtures` (the seeds scenario) all raise `ApiError` and run `validate`, and
`model` checks names against the pattern `validate` uses, so these live here
rather than in any of them; that keeps the modules' imports one-way
(test_simulator.py checks they form no cycle).

Inputs are checked against botocore's own input shapes (plus the `max` bounds
botocore does not enforce), so the simulator rejects what the service rejects.
"""

from __future__ import annotations

import re
from functools import cache

from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

from recorder.simulator.definitions import DAY

RETENTION_S = 365 * DAY  # ListPipelineExecutions shows 12 months
PIPELINE_NAME = re.compile(r"[A-Za-z0-9.@\-_]{1,100}")

OPERATIONS = (
    "ListPipelines",
    "GetPipeline",
    "GetPipelineState",
    "ListPipelineExecutions",
    "GetPipelineExecution",
    "ListActionExecutions",
    "ListRuleExecutions",
)


class ApiError(Exception):
    """A modeled AWS error: `code` becomes `__type`, `http_status` the status line."""

    def __init__(self, code: str, message: str, http_status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


@cache
def service_model():
    import botocore.session

    return botocore.session.get_session().get_service_model("codepipeline")


def validate(operation: str, params: dict) -> None:
    if operation not in OPERATIONS:
        raise ApiError("UnknownOperationException", f"Unknown operation {operation}")
    shape = service_model().operation_model(operation).input_shape
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "Request body must be a JSON object")
    try:
        validate_parameters(params, shape)
    except ParamValidationError as e:
        report = str(e.kwargs.get("report", e)).replace("\n", "; ")
        raise ApiError("ValidationException", f"1 validation error detected: {report}") from None
    if "maxResults" in params:
        top = shape.members["maxResults"].metadata["max"]
        if params["maxResults"] > top:
            raise ApiError(
                "ValidationException",
                f"1 validation error detected: Value '{params['maxResults']}' at 'maxResults' "
                f"failed to satisfy constraint: Member must have value less than or equal to {top}",
            )
    for key in ("name", "pipelineName"):
        if key in params and not PIPELINE_NAME.fullmatch(params[key]):
            raise ApiError(
                "ValidationException",
                f"1 validation error detected: Value '{params[key]}' at '{key}' failed to "
                "satisfy constraint: Member must satisfy regular expression pattern: "
                "[A-Za-z0-9.@\\-_]+",
            )
