"""Models: enums, aliases (snake_case and the Go era's camelCase), timestamps, validation errors."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError

from nslang.workers.errors import describe_validation_error
from nslang.workers.models import (
    AIWorkerDefinition,
    AIWorkerInstanceStatus,
    AIWorkerPerformanceSummary,
    AIWorkerProvider,
    APIKeySourceMethod,
    InteractionModelType,
    PerformanceRecord,
    RetiredInstanceInfo,
    format_timestamp,
    parse_timestamp,
)

# The upstream embedded defaults (ai_workers.md §3.5), snake_case as shipped.
GO_DEFAULTS = [
    {"name": "gem1.5", "provider": "google", "model_name": "gemini-1.5-pro-latest",
     "auth": {"method": "env_var", "value": "GOOGLE_API_KEY"},
     "interaction_models": ["conversational", "stateless_task"],
     "capabilities": ["general", "text_generation", "reasoning"],
     "base_config": {"temperature": 0.7, "top_p": 0.9}, "status": "active",
     "metadata": {"description": "Gemini"}},
    {"name": "gpt4o", "provider": "openai", "model_name": "gpt-4o",
     "auth": {"method": "env_var", "value": "OPENAI_API_KEY"},
     "interaction_models": ["conversational", "stateless_task"],
     "capabilities": ["general", "text_generation", "code_generation", "reasoning"],
     "base_config": {"temperature": 0.7}, "status": "active", "metadata": {"description": "GPT-4o"}},
    {"name": "ll3-loc", "provider": "ollama", "model_name": "llama3:latest", "auth": {"method": "none"},
     "interaction_models": ["conversational", "stateless_task"],
     "capabilities": ["general", "text_generation", "local_execution"],
     "base_config": {"temperature": 0.6, "num_ctx": 4096}, "status": "active",
     "metadata": {"description": "Llama 3"}},
    {"name": "jun-dev", "provider": "google", "model_name": "gemini-1.5-pro-latest",
     "auth": {"method": "env_var", "value": "GOOGLE_API_KEY"}, "interaction_models": ["stateless_task"],
     "capabilities": ["go_code_generation", "code_analysis", "code_completion"],
     "base_config": {"temperature": 0.3, "top_p": 0.8, "candidate_count": 1},
     "tool_allowlist": ["tool.ReadFile", "tool.WriteFile", "tool.ListDirectory", "tool.Gopls.GetDiagnostics",
                        "tool.Gopls.NotifyDidChange"],
     "status": "active", "metadata": {"description": "Go developer"}},
]


def test_go_defaults_keep_every_field() -> None:
    """§6 B1: model_name, base_config and tool_allowlist survive loading the shipped defaults."""
    defs = [AIWorkerDefinition.model_validate(d) for d in GO_DEFAULTS]
    assert len(defs) == 4
    assert all(d.status == "active" for d in defs)
    assert [d.model_name for d in defs] == ["gemini-1.5-pro-latest", "gpt-4o", "llama3:latest",
                                            "gemini-1.5-pro-latest"]
    assert defs[0].base_config == {"temperature": 0.7, "top_p": 0.9}
    assert defs[3].tool_allowlist[0] == "tool.ReadFile"
    # round trip through JSON keeps everything
    again = [AIWorkerDefinition.model_validate(json.loads(json.dumps(d.model_dump(mode="json")))) for d in defs]
    assert again == defs


def test_camel_case_keys_of_the_go_era_are_accepted() -> None:
    d = AIWorkerDefinition.model_validate({
        "definitionID": "abc", "name": "x", "provider": "openai", "modelName": "gpt-4o",
        "baseConfig": {"temperature": 0.1}, "costMetrics": {"input_cost_per_token": 0.5},
        "rateLimits": {"max_requests_per_minute": 3}, "toolAllowlist": ["a"],
        "defaultFileContexts": ["f"], "defaultSupervisoryAIRef": "sup", "interaction_models": ["both"],
        "createdTimestamp": "0001-01-01T00:00:00Z", "modifiedTimestamp": "2025-06-30T23:28:11.123456789-07:00",
    })
    assert d.definition_id == "abc" and d.model_name == "gpt-4o" and d.base_config == {"temperature": 0.1}
    assert d.rate_limits.max_requests_per_minute == 3 and d.default_supervisory_ai_ref == "sup"
    assert d.created_timestamp is None  # Go's zero time
    assert d.modified_timestamp == dt.datetime(2025, 7, 1, 6, 28, 11, 123456, tzinfo=dt.timezone.utc)
    dumped = d.model_dump(mode="json")
    assert "model_name" in dumped and "modelName" not in dumped
    assert dumped["modified_timestamp"] == "2025-07-01T06:28:11.123456Z"


@pytest.mark.parametrize("field,value", [
    ("provider", "gpt"), ("status", "paused"), ("interaction_models", ["chat"]), ("auth", {"method": "env"}),
])
def test_unknown_enum_values_are_clear_errors(field: str, value: object) -> None:
    data = {"name": "x", "provider": "test", field: value}
    with pytest.raises(ValidationError) as ei:
        AIWorkerDefinition.model_validate(data)
    text = describe_validation_error(ei.value)
    assert field in text and "Input should be" in text


def test_unknown_fields_are_errors_and_inputs_are_not_echoed() -> None:
    with pytest.raises(ValidationError) as ei:
        AIWorkerDefinition.model_validate({"name": "x", "provider": "test", "bogus": 1,
                                           "auth": {"method": "inline", "value": "sk-do-not-echo", "x": "sk-x"}})
    text = describe_validation_error(ei.value)
    assert "bogus: unknown field" in text and "auth.x: unknown field" in text
    assert "sk-do-not-echo" not in text and "sk-x" not in text


def test_enum_string_values_are_exact() -> None:
    assert [m.value for m in InteractionModelType] == ["conversational", "stateless_task", "both"]
    assert [m.value for m in APIKeySourceMethod] == ["env_var", "inline", "config_path", "vault", "none"]
    assert {p.value for p in AIWorkerProvider} == {"google", "openai", "anthropic", "ollama", "local", "custom",
                                                   "test"}
    assert len(AIWorkerInstanceStatus) == 10
    assert f"{AIWorkerProvider.TEST}" == "test" and str(AIWorkerInstanceStatus.IDLE) == "idle"


def test_empty_status_and_method_default() -> None:
    d = AIWorkerDefinition.model_validate({"name": "x", "provider": "test", "status": "", "auth": {"method": ""}})
    assert d.status == "active" and d.auth.method == "none"


@pytest.mark.parametrize("text,expected", [
    ("2025-01-02T03:04:05Z", dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),
    ("2025-01-02T03:04:05.5Z", dt.datetime(2025, 1, 2, 3, 4, 5, 500000, tzinfo=dt.timezone.utc)),
    ("2025-01-02T05:04:05+02:00", dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),
    ("2025-01-02T03:04:05.123456789Z", dt.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone.utc)),
    ("0001-01-01T00:00:00Z", None),
    ("", None),
])
def test_timestamps(text: str, expected: dt.datetime | None) -> None:
    assert parse_timestamp(text) == expected


def test_bad_timestamp_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")
    assert format_timestamp(dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)) == "2025-01-02T03:04:05Z"


def test_retired_entry_of_the_go_era() -> None:
    e = RetiredInstanceInfo.model_validate({
        "instance_id": "i", "definition_id": "d", "final_status": "retired_exhausted",
        "session_token_usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        "performance_records": None, "retirement_timestamp": "2025-01-01T00:00:00Z", "someFutureKey": 1,
    })
    assert e.entry_kind == "retired_instance" and e.performance_records == []


def test_record_and_summary_defaults() -> None:
    r = PerformanceRecord(task_id="t", success=True)
    assert r.llm_metrics == {} and r.supervisor_feedback is None
    s = AIWorkerPerformanceSummary()
    assert set(s.model_dump()) >= {"total_tasks_attempted", "successful_tasks", "failed_tasks",
                                   "average_success_rate", "average_duration_ms", "total_tokens_processed",
                                   "total_cost_incurred", "average_quality_score", "last_activity_timestamp",
                                   "total_instances_spawned", "active_instances_count"}


def test_negative_limits_and_costs_are_refused() -> None:
    with pytest.raises(ValidationError):
        AIWorkerDefinition.model_validate({"name": "x", "provider": "test",
                                           "rate_limits": {"max_requests_per_minute": -1}})
    with pytest.raises(ValidationError):
        AIWorkerDefinition.model_validate({"name": "x", "provider": "test",
                                           "cost_metrics": {"input_cost_per_token": -0.1}})
