"""The seeds scenario: an account that serves the two samples in `shared/seeds/`.

- GetPipelineExecution for `MyFirstPipeline` returns the sample response of the
  API reference byte for byte (`fixtures/get_pipeline_execution.json`), including
  `"revisionUrl": ""`, which the model's min-length constraint does not allow but
  the service sends. It answers the sample request's execution id
  (`42ee4d10-...`) and the id inside the response (`3137f7cb-...`) alike.
- GetPipelineState for the pipeline named `string`: its seed page shows only the
  boto3 *Response Syntax*, so the fixture is that syntax made concrete: every
  string is 'string', every integer 123, every boolean true, every timestamp
  datetime(2015, 1, 1) UTC (epoch 1420070400), every enum its first listed value
  (`fixtures/get_pipeline_state.json`, served as compact JSON).
The other operations answer small, consistent bodies around those two samples.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources

from recorder.simulator.model import Account
from recorder.simulator.protocol import ApiError, validate

SAMPLE_PIPELINE = "MyFirstPipeline"
SAMPLE_EXECUTION_IDS = (
    "3137f7cb-7cf7-039j-s83l-d7eu3EXAMPLE",  # in the sample response
    "42ee4d10-e4de-a37c-82b7-36c11EXAMPLE",  # in the sample request
)
SYNTAX_PIPELINE = "string"
EPOCH_2015 = 1420070400


def fixture_text(name: str) -> str:
    return resources.files("recorder.simulator").joinpath("fixtures", name).read_text("utf-8")


class SeedAccount(Account):
    """Two pipelines, `MyFirstPipeline` and `string`, answering with the seed samples."""

    def __init__(self) -> None:
        super().__init__(
            pipelines=0, days=0, seed=0, now=datetime(2016, 7, 7, 17, 15, 59, tzinfo=UTC)
        )
        self._names = [SAMPLE_PIPELINE, SYNTAX_PIPELINE]
        self._index = {n: i for i, n in enumerate(self._names)}
        self.execution_raw = fixture_text("get_pipeline_execution.json").strip().encode()
        self.state_sample = json.loads(fixture_text("get_pipeline_state.json"))

    def raw_body(self, operation: str, params: dict) -> bytes | None:
        if (
            operation == "GetPipelineExecution"
            and params.get("pipelineName") == SAMPLE_PIPELINE
            and params.get("pipelineExecutionId") in SAMPLE_EXECUTION_IDS
            and SAMPLE_PIPELINE not in self._deleted
        ):
            return self.execution_raw
        return None

    def call(self, operation: str, params: dict | None = None) -> dict:
        params = {} if params is None else params
        validate(operation, params)
        with self.lock:
            if operation == "ListPipelines":
                return {"pipelines": [self._summary(n) for n in sorted(self.pipeline_names())]}
            name = params.get("name") or params.get("pipelineName")
            if name not in self.pipeline_names():
                raise ApiError(
                    "PipelineNotFoundException",
                    f"Account '{self.account_id}' does not have a pipeline with name '{name}'",
                )
            return getattr(self, "_" + operation)(name, params)

    def _summary(self, name: str) -> dict:
        if name == SAMPLE_PIPELINE:
            return {"name": name, "version": 2}
        return {"name": name, "version": 123, "created": EPOCH_2015, "updated": EPOCH_2015}

    def _GetPipeline(self, name: str, params: dict) -> dict:
        version = 2 if name == SAMPLE_PIPELINE else 123
        if params.get("version", version) != version:
            raise ApiError("PipelineVersionNotFoundException", "Pipeline version not found")
        if name == SAMPLE_PIPELINE:
            stages = [
                {"name": "Source", "actions": [{
                    "name": "Source",
                    "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3",
                                     "version": "1"},
                    "runOrder": 1,
                    "configuration": {
                        "S3Bucket": "awscodepipeline-demobucket-example-date",
                        "S3ObjectKey": "aws-codepipeline-s3-aws-codedeploy_linux.zip",
                    },
                    "outputArtifacts": [{"name": "MyApp"}], "inputArtifacts": []}]},
                {"name": "Staging", "actions": [{
                    "name": "Deploy-CodeDeploy-Application",
                    "actionTypeId": {"category": "Deploy", "owner": "AWS",
                                     "provider": "CodeDeploy", "version": "1"},
                    "runOrder": 1,
                    "configuration": {"ApplicationName": "CodePipelineDemoApplication",
                                      "DeploymentGroupName": "CodePipelineDemoFleet"},
                    "outputArtifacts": [], "inputArtifacts": [{"name": "MyApp"}]}]},
            ]  # fmt: skip
        else:
            stages = [{"name": "string", "actions": [{
                "name": "string",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "string",
                                 "version": "1"}}]}]  # fmt: skip
        return {
            "pipeline": {
                "name": name,
                "roleArn": f"arn:aws:iam::{self.account_id}:role/AWS-CodePipeline-Service",
                "artifactStore": {"type": "S3", "location": "codepipeline-us-east-1-11EXAMPLE11"},
                "stages": stages,
                "version": version,
            }
        }

    def _GetPipelineState(self, name: str, params: dict) -> dict:
        if name == SYNTAX_PIPELINE:
            return json.loads(json.dumps(self.state_sample))
        eid = SAMPLE_EXECUTION_IDS[0]
        return {
            "pipelineName": name,
            "pipelineVersion": 2,
            "stageStates": [
                {"stageName": stage, "actionStates": [{"actionName": action}],
                 "latestExecution": {"pipelineExecutionId": eid, "status": "Succeeded"}}
                for stage, action in (("Source", "Source"),
                                      ("Staging", "Deploy-CodeDeploy-Application"))
            ],
        }  # fmt: skip

    def _ListPipelineExecutions(self, name: str, params: dict) -> dict:
        if name != SAMPLE_PIPELINE:
            return {"pipelineExecutionSummaries": []}
        sample = json.loads(self.execution_raw)["pipelineExecution"]
        rev = sample["artifactRevisions"][0]
        return {
            "pipelineExecutionSummaries": [
                {
                    "pipelineExecutionId": sample["pipelineExecutionId"],
                    "status": sample["status"],
                    "sourceRevisions": [{"actionName": "Source", "revisionId": rev["revisionId"],
                                         "revisionSummary": rev["revisionSummary"]}],
                }
            ]
        }  # fmt: skip

    def _GetPipelineExecution(self, name: str, params: dict) -> dict:
        raw = self.raw_body("GetPipelineExecution", params)
        if raw is None:
            raise ApiError(
                "PipelineExecutionNotFoundException",
                f"Pipeline execution with id '{params['pipelineExecutionId']}' does not exist "
                f"in pipeline with name '{name}'.",
            )
        return json.loads(raw)

    def _ListActionExecutions(self, name: str, params: dict) -> dict:
        return {"actionExecutionDetails": []}

    def _ListRuleExecutions(self, name: str, params: dict) -> dict:
        return {"ruleExecutionDetails": []}

    def all_executions(self, name: str) -> list[dict]:
        listing = self.call("ListPipelineExecutions", {"pipelineName": name})
        return [
            self.call("GetPipelineExecution", {"pipelineName": name, "pipelineExecutionId": i})[
                "pipelineExecution"
            ]
            for i in (s["pipelineExecutionId"] for s in listing["pipelineExecutionSummaries"])
        ]

    def all_action_executions(self, name: str) -> list[dict]:
        return []

    def all_rule_executions(self, name: str) -> list[dict]:
        return []
