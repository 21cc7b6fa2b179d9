"""The NeuroScript tools of the AI worker subsystem (ai_workers.md Part 1 "Tools").

Groups ``AIWorkerDefinition``, ``AIWorkerInstance`` and ``AIWorker``; names are matched
case-insensitively, arguments may be positional or named, and every argument is validated by the
registry before a tool runs. Outputs are maps with snake_case keys; timestamps are RFC 3339
strings; an ``inline`` key shows only as ``****`` plus its last 4 characters. Each tool is a thin
wrapper over :class:`~nslang.workers.manager.AIWorkerManager` (reached as
``ctx.interpreter.workers``); errors carry the codes listed in each tool's spec.

Beyond the upstream set: ``AIWorkerInstance.Chat`` (Part 1), ``AIWorkerInstance.GetHistory`` and
``AIWorker.GetPerformanceSummary``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..tools.registry import ToolContext, ToolRegistry, tool
from ._checks import name_key
from .errors import AIWorkerError, InvalidArgumentError
from .manager import AIWorkerManager
from .models import AIWorkerDefinition, AIWorkerInstance, PerformanceRecord

__all__ = ["TOOLS", "register_worker_tools"]

DEF = "AIWorkerDefinition"
INST = "AIWorkerInstance"
WORK = "AIWorker"


def _mgr(ctx: ToolContext) -> AIWorkerManager:
    try:
        mgr: AIWorkerManager = ctx.interpreter.workers
    except AttributeError:
        raise AIWorkerError("AIWorkerManager not available in this interpreter") from None
    return mgr


def _definition_map(d: AIWorkerDefinition) -> dict[str, Any]:
    return d.model_dump(mode="json")


def _instance_map(i: AIWorkerInstance) -> dict[str, Any]:
    return i.model_dump(mode="json", exclude={"pool_id", "current_task_id", "supervisory_ai_ref",
                                              "data_source_refs"})


def _record_map(r: PerformanceRecord) -> dict[str, Any]:
    return r.model_dump(mode="json")


def _require(func: Callable[..., Any], *names: str) -> Callable[..., Any]:
    """Mark optional-looking Python parameters as required in the tool's spec."""
    spec = func.__ns_tool_spec__  # type: ignore[attr-defined]
    args = tuple(a.replace(required=True) if a.name in names else a for a in spec.args)
    func.__ns_tool_spec__ = spec.replace(args=args)  # type: ignore[attr-defined]
    return func


# ============================================================================== AIWorkerDefinition


@tool(DEF, "Add", example='set id = tool.AIWorkerDefinition.Add(name: "summarizer", provider: "test", '
                          'interaction_models: ["stateless_task"])')
def definition_add(ctx: ToolContext, name: str, provider: str, model_name: str | None = None,
                   auth: dict[str, Any] | None = None, interaction_models: list[str] | None = None,
                   capabilities: list[str] | None = None, base_config: dict[str, Any] | None = None,
                   cost_metrics: dict[str, Any] | None = None, rate_limits: dict[str, Any] | None = None,
                   status: str | None = None, default_file_contexts: list[str] | None = None,
                   metadata: dict[str, Any] | None = None, definition_id: str | None = None,
                   tool_allowlist: list[str] | None = None, tool_denylist: list[str] | None = None,
                   data_source_refs: list[str] | None = None,
                   default_supervisory_ai_ref: str | None = None, if_exists: str = "error") -> str:
    """Create an AI worker definition and save it in the sandbox's ai_worker_definitions.json.

    With if_exists "keep" or "update", a script that defines its workers can run again
    (issue 15): the definition of that name is kept as it is, or updated with the given fields.

    Args:
        name: unique, non-empty name (ExecuteStatelessTask and ask use it).
        provider: openai, anthropic, google, ollama, local, custom or test (offline, not an LLM).
        model_name: the provider's model name; required for openai, anthropic, google, ollama, local.
        auth: API key source {"method": "env_var"|"inline"|"config_path"|"none", "value": …,
            "key_path": …}; default none. An inline key is kept in memory only, never written. A
            config_path file is relative to the sandbox, or absolute inside the nslang config directory.
        interaction_models: any of conversational, stateless_task, both; default ["both"].
        capabilities: free tags, used by List filters.
        base_config: model settings (temperature, top_p, max_tokens, base_url, timeout_s (seconds per
            attempt), max_retries, retry_backoff_s, system_prompt, max_history_turns (chat: the
            system prompt plus the last N exchanges are sent), max_prompt_chars (default 1,000,000);
            custom_provider for provider custom;
            other keys are passed through to the provider request).
        cost_metrics: USD prices {"input_cost_per_token", "output_cost_per_token", "per_call"}.
        rate_limits: {"max_requests_per_minute", "max_tokens_per_minute", "max_tokens_per_day",
            "max_concurrent_active_instances"} (0 means unlimited), "on_limit" ("error", the default, or
            "wait") and "max_wait_s" (seconds, default 60; 0: only the run's timeout bounds the wait).
        status: active (default), disabled or archived.
        default_file_contexts: file context URIs given to spawned instances.
        metadata: free map, e.g. {"description": "…"}.
        definition_id: an ID to use instead of a generated UUID.
        tool_allowlist: tools the worker may use (recorded, not yet enforced).
        tool_denylist: tools the worker may not use (recorded, not yet enforced).
        data_source_refs: data source names (recorded).
        default_supervisory_ai_ref: supervising worker (recorded).
        if_exists: what to do when a definition with this name (compared ignoring case) exists:
            "error" (default), "keep" (return its definition_id, change nothing) or "update" (apply the
            given fields to it).

    Returns:
        The new definition_id (a UUID, stable across restarts), or the existing one's.

    Raises:
        4 (ArgMismatch) for a bad or unknown field or enum value, a duplicate name or ID, a bad
        if_exists; 30 for auth method vault; 6 if the definitions file is corrupt or cannot be written
        (nothing is written).
    """
    if if_exists not in ("error", "keep", "update"):
        raise InvalidArgumentError(f"AIWorkerDefinition.Add: if_exists must be \"error\", \"keep\" or "
                                   f"\"update\", got {if_exists!r}")
    data = {k: v for k, v in {
        "name": name, "provider": provider, "model_name": model_name, "auth": auth,
        "interaction_models": interaction_models, "capabilities": capabilities, "base_config": base_config,
        "cost_metrics": cost_metrics, "rate_limits": rate_limits, "status": status,
        "default_file_contexts": default_file_contexts, "metadata": metadata, "definition_id": definition_id,
        "tool_allowlist": tool_allowlist, "tool_denylist": tool_denylist, "data_source_refs": data_source_refs,
        "default_supervisory_ai_ref": default_supervisory_ai_ref,
    }.items() if v is not None}
    mgr = _mgr(ctx)
    if if_exists != "error":
        # the same name as uniqueness sees it (case, NFC): "W1" finds "w1" instead of failing as a duplicate
        wanted = name_key(name) if isinstance(name, str) else name
        existing = next((d for d in mgr.list_definitions() if name_key(d.name) == wanted), None)
        if existing is not None:
            if if_exists == "update":
                changes = {k: v for k, v in data.items() if k not in ("name", "definition_id")}
                mgr.update_definition(existing.definition_id, changes)
            return existing.definition_id
    return mgr.add_definition(data).definition_id


@tool(DEF, "Get", example='set def = tool.AIWorkerDefinition.Get("summarizer")')
def definition_get(ctx: ToolContext, definition_id: str) -> dict[str, Any]:
    """Get a worker definition with its live performance summary.

    Args:
        definition_id: the definition's ID (its unique name is accepted too).

    Returns:
        The definition map (snake_case keys; auth value redacted for inline keys;
        aggregate_performance_summary with every field, costs in USD, durations in ms).

    Raises:
        9 (KeyNotFound) if there is no such definition.
    """
    return _definition_map(_mgr(ctx).get_definition(definition_id))


@tool(DEF, "List", example='set defs = tool.AIWorkerDefinition.List({"provider": "test", "status": "active"})')
def definition_list(ctx: ToolContext, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """List worker definitions, sorted by name.

    Args:
        filters: optional map; keys definition_id, name (substring), provider, model_name (substring),
            status, interaction_models_contains, capabilities_contains, capabilities_contains_all (list).

    Returns:
        A list of definition maps (empty if none match).

    Raises:
        4 (ArgMismatch) for an unknown filter key or a value of the wrong type.
    """
    return [_definition_map(d) for d in _mgr(ctx).list_definitions(filters)]


@tool(DEF, "Update", example='call tool.AIWorkerDefinition.Update(id, {"rate_limits": {"max_requests_per_minute": 5}})')
def definition_update(ctx: ToolContext, definition_id: str, updates: dict[str, Any]) -> dict[str, Any]:
    """Change fields of a worker definition and save it.

    auth and rate_limits are merged field by field; every other field is replaced whole.
    definition_id, the summary and the timestamps cannot be changed.

    Args:
        definition_id: the definition's ID (or unique name).
        updates: map of field name to new value (the fields of AIWorkerDefinition.Add).

    Returns:
        The updated definition map.

    Raises:
        9 if there is no such definition; 4 for an unknown or read-only field, a bad value or a name
        already taken; 30 for auth method vault; 6 if the file is corrupt (nothing is written).
    """
    return _definition_map(_mgr(ctx).update_definition(definition_id, updates))


@tool(DEF, "Remove", example='call tool.AIWorkerDefinition.Remove(id)')
def definition_remove(ctx: ToolContext, definition_id: str, retire_instances: bool = False) -> None:
    """Delete a worker definition (its performance records stay in the log).

    Args:
        definition_id: the definition's ID (or unique name).
        retire_instances: retire its active instances first instead of refusing (default false).

    Raises:
        9 if there is no such definition; 19 (PreconditionFailed) if it has active instances and
        retire_instances is false; 6 if the file is corrupt (nothing is written).
    """
    _mgr(ctx).remove_definition(definition_id, retire_instances=retire_instances)


@tool(DEF, "LoadAll", example="set msg = tool.AIWorkerDefinition.LoadAll()")
def definition_load_all(ctx: ToolContext) -> str:
    """Re-read ai_worker_definitions.json (active instances are kept).

    Returns:
        "Reloaded N worker definitions."

    Raises:
        6 if the file is corrupt or unreadable (the definitions in memory are kept).
    """
    return f"Reloaded {_mgr(ctx).reload_definitions()} worker definitions."


@tool(DEF, "SaveAll", example="set msg = tool.AIWorkerDefinition.SaveAll()")
def definition_save_all(ctx: ToolContext) -> str:
    """Rewrite ai_worker_definitions.json with the current performance summaries.

    Every change is saved when it is made; this refreshes the stored summaries. Changes other
    processes made are kept.

    Returns:
        "Saved N worker definitions."

    Raises:
        6 if the file is corrupt or cannot be written.
    """
    return f"Saved {_mgr(ctx).save_definitions()} worker definitions."


# ============================================================================== AIWorkerInstance


@tool(INST, "Spawn", example='set inst = tool.AIWorkerInstance.Spawn("chatter", {"temperature": 0.2})')
def instance_spawn(ctx: ToolContext, definition_id: str, config_overrides: dict[str, Any] | None = None,
                   file_contexts: list[str] | None = None) -> dict[str, Any]:
    """Start a conversational instance of a definition.

    Args:
        definition_id: the definition's ID (or unique name); it must be active and support
            conversational (or both).
        config_overrides: settings merged over the definition's base_config (shallow).
        file_contexts: file context URIs; default the definition's default_file_contexts.

    Returns:
        The instance map (instance_id, definition_id, status, timestamps, session_token_usage,
        current_config, active_file_contexts, last_error, retirement_reason) plus
        conversation_manager_handle (the same as instance_id, kept for upstream scripts).

    Raises:
        9 if there is no such definition; 19 if it is not active or not conversational; 20
        (RateLimited) if max_concurrent_active_instances is reached.
    """
    inst = _mgr(ctx).spawn_instance(definition_id, config_overrides, file_contexts)
    out = _instance_map(inst)
    out["conversation_manager_handle"] = inst.instance_id
    return out


@tool(INST, "Get", example="set inst = tool.AIWorkerInstance.Get(id)")
def instance_get(ctx: ToolContext, instance_id: str) -> dict[str, Any]:
    """Get an active instance.

    Args:
        instance_id: the instance's ID.

    Returns:
        The instance map.

    Raises:
        9 if there is no such active instance.
    """
    return _instance_map(_mgr(ctx).get_instance(instance_id))


@tool(INST, "ListActive", example='set insts = tool.AIWorkerInstance.ListActive({"definition_id": id})')
def instance_list_active(ctx: ToolContext, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """List the active instances of this interpreter, oldest first.

    Args:
        filters: optional map; keys instance_id, definition_id, status (exact).

    Returns:
        A list of instance maps.

    Raises:
        4 for an unknown filter key or a value of the wrong type.
    """
    return [_instance_map(i) for i in _mgr(ctx).list_instances(filters)]


@tool(INST, "Retire", example='set info = tool.AIWorkerInstance.Retire(id, "finished", "retired_completed")')
def instance_retire(ctx: ToolContext, instance_id: str, reason: str | None = None, final_status: str | None = None,
                    conversation_manager_handle: str | None = None,
                    final_session_token_usage: dict[str, Any] | None = None,
                    performance_records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Retire an active instance and log it to ai_worker_performance_data.json.

    The manager already holds the session's token usage and chat-turn records; the upstream
    arguments conversation_manager_handle, final_session_token_usage and performance_records are
    accepted but optional. The upstream positional form Retire(id, handle, reason, status, usage) is
    recognised when the second argument is the instance's handle (its ID).

    Args:
        instance_id: the instance's ID.
        reason: why it is retired.
        final_status: retired_completed (default), retired_error, retired_exhausted, context_full or
            token_limit_reached (completed, error, exhausted, cancelled are accepted short forms).
        conversation_manager_handle: ignored (the handle is the instance ID).
        final_session_token_usage: {"input_tokens", "output_tokens"}; raises the recorded usage if
            higher, never lowers it.
        performance_records: records of work done outside the manager; they are logged and counted.

    Returns:
        The logged entry (instance_id, definition_id, creation_timestamp, retirement_timestamp,
        final_status, retirement_reason, session_token_usage, initial_file_contexts,
        performance_records).

    Raises:
        9 if there is no such instance; 4 for a bad status, usage or record; 19 while a chat turn is
        running; 6 if the log cannot be written (the instance then stays active).
    """
    if reason is not None and reason == instance_id and conversation_manager_handle is not None:
        # upstream positional order: (instance_id, handle, reason, final_status, usage, records)
        reason, final_status, conversation_manager_handle = final_status, conversation_manager_handle, reason
    info = _mgr(ctx).retire_instance(instance_id, reason or "", final_status, final_session_token_usage,
                                     performance_records)
    return info.model_dump(mode="json", exclude={"entry_kind"})


@tool(INST, "UpdateStatus", example='call tool.AIWorkerInstance.UpdateStatus(id, "error", "upstream failed")')
def instance_update_status(ctx: ToolContext, instance_id: str, status: str, last_error: str | None = None) -> None:
    """Set an active instance's status.

    Nothing happens if the status is unchanged (and, for error, so is last_error); last_error is
    kept only with status error.

    Args:
        instance_id: the instance's ID.
        status: initializing, idle, busy, context_full, rate_limited, token_limit_reached or error
            (retired statuses: use Retire).
        last_error: the error text, with status error.

    Raises:
        9 if there is no such instance; 4 for an unknown or retired status.
    """
    _mgr(ctx).update_instance_status(instance_id, status, last_error)


@tool(INST, "UpdateTokenUsage", example="call tool.AIWorkerInstance.UpdateTokenUsage(id, 120, 80)")
def instance_update_token_usage(ctx: ToolContext, instance_id: str, input_tokens: int, output_tokens: int) -> None:
    """Add token counts to an instance's session usage (total = input + output).

    Args:
        instance_id: the instance's ID.
        input_tokens: input tokens to add (>= 0).
        output_tokens: output tokens to add (>= 0).

    Raises:
        9 if there is no such instance; 4 for a negative count.
    """
    _mgr(ctx).update_instance_token_usage(instance_id, input_tokens, output_tokens)


@tool(INST, "Chat", example='set reply = tool.AIWorkerInstance.Chat(id, "And in one sentence?")')
def instance_chat(ctx: ToolContext, instance_id: str, message: str, tools: list[str] | None = None,
                  max_iterations: int | None = None, timeout_s: float | None = None) -> Any:
    """Send one user turn in an instance's conversation and return the reply.

    The whole conversation is sent; the reply is added to it, the provider's token usage to the
    session, and one performance record is logged. On failure the status becomes error (the record
    is logged too) and the error is raised. With tools, the turn is a tool-calling loop (see
    AIWorker.ExecuteStatelessTask) and the result is its map.

    Args:
        instance_id: the instance's ID.
        message: the user's message.
        tools: tools (tool.fs.Read, fs.*) and procedures the model may call (issue 12).
        max_iterations: model calls at most, with tools (default 10).
        timeout_s: the turn's time limit in seconds, with tools (default 600).

    Returns:
        The assistant's reply; with tools, {"output", "task_id", "cost", "input_tokens",
        "output_tokens", "duration_ms", "iterations", "tool_calls", "finish_reason"}.

    Raises:
        9 if there is no such instance; 19 if it is busy or its definition is not active; 18 for a
        missing API key; 20 when a rate limit is reached; 40 if the provider is not available;
        16 (LLMError) or 31 (Timeout) when the model call fails; with tools, 37 when max_iterations
        and 31 when timeout_s run out.
    """
    if tools is None:
        if max_iterations is not None or timeout_s is not None:
            raise InvalidArgumentError("max_iterations and timeout_s need tools")
        return _mgr(ctx).chat(instance_id, message).text
    from .agent import AgentOptions

    agent = AgentOptions.build(tools, max_iterations, timeout_s)
    return _mgr(ctx).chat(instance_id, message, agent=agent, host=ctx.interpreter).as_map()


@tool(INST, "GetHistory", example="set turns = tool.AIWorkerInstance.GetHistory(id)")
def instance_get_history(ctx: ToolContext, instance_id: str) -> list[dict[str, Any]]:
    """The conversation of an active instance so far (kept in memory only).

    Args:
        instance_id: the instance's ID.

    Returns:
        A list of {"role": "user"|"assistant", "content": …} maps, oldest first.

    Raises:
        9 if there is no such instance.
    """
    return list(_mgr(ctx).get_history(instance_id))


# ============================================================================== AIWorker


@tool(WORK, "ExecuteStatelessTask",
      example='set r = tool.AIWorker.ExecuteStatelessTask("summarizer", "Summarize: " + text)')
def execute_stateless_task(ctx: ToolContext, name: str | None = None, prompt: str | None = None,
                           config_overrides: dict[str, Any] | None = None,
                           definition_id: str | None = None, tools: list[str] | None = None,
                           max_iterations: int | None = None, timeout_s: float | None = None,
                           tool_timeout_s: float | None = None, max_result_chars: int | None = None
                           ) -> dict[str, Any]:
    """Run one stateless task on a worker definition and log its performance record.

    With tools, the model may call them in a loop (issue 12): each tool call is validated,
    checked against the definition's tool_allowlist / tool_denylist, approved when it has side
    effects, run, and its result sent back as data; the loop ends when the model answers
    without tool calls. One performance record covers the whole task.

    Args:
        name: the definition's name (an ID is accepted too); give this or definition_id.
        prompt: the prompt.
        config_overrides: settings merged over the definition's base_config for this call;
            {"max_cost_usd": USD} is the task's cost budget, {"cache": true} uses the response cache.
        definition_id: the definition's ID, instead of name.
        tools: tools ("tool.fs.Read", "fs.*"; case-insensitive, aliases accepted) and procedure
            names the model may call.
        max_iterations: model calls at most (default 10).
        timeout_s: the task's time limit in seconds (default 600; never beyond the run's --timeout).
        tool_timeout_s: each tool call's time limit in seconds (default 60).
        max_result_chars: a tool result's longest text sent to the model (default 100000).

    Returns:
        {"output": reply, "task_id": …, "cost": USD, "input_tokens": n, "output_tokens": n,
        "duration_ms": milliseconds, "iterations": model calls, "tool_calls": [{"name",
        "arguments", "ok", "result" or "error", "duration_ms", "iteration", "flags"}],
        "finish_reason": …}.

    Raises:
        4 if neither name nor definition_id is given; 9 if there is no such definition; 19 if it is
        not active or does not support stateless_task; 18 for a missing API key; 30 for a vault key;
        40 if the provider is not available; 20 (RateLimited) when a limit is reached (the message
        names the limit and the seconds until it frees); 37 when a cost budget would be exceeded;
        16 or 31 when the model call fails (the failure is recorded; the definition's fallback
        definitions are tried first). Refused requests produce no record. With tools: 4 for an
        unknown tool name; 37 when max_iterations, 31 when timeout_s, and 37 when a cost budget runs
        out during the loop (recorded, keeping what was done).
    """
    if name and definition_id and name != definition_id:
        raise InvalidArgumentError("give either name or definition_id, not both")
    ref = name or definition_id
    if not ref:
        raise InvalidArgumentError("a worker definition name (or definition_id) is required")
    if prompt is None:  # required in the spec, so the registry has already refused this
        raise InvalidArgumentError("prompt is required")
    if tools is None:
        if any(v is not None for v in (max_iterations, timeout_s, tool_timeout_s, max_result_chars)):
            raise InvalidArgumentError("max_iterations, timeout_s, tool_timeout_s and max_result_chars need tools")
        return _mgr(ctx).execute_stateless_task(ref, prompt, config_overrides).as_map()
    from .agent import AgentOptions

    agent = AgentOptions.build(tools, max_iterations, timeout_s, tool_timeout_s, max_result_chars)
    return _mgr(ctx).execute_stateless_task(ref, prompt, config_overrides, agent=agent,
                                            host=ctx.interpreter).as_map()


_require(execute_stateless_task, "prompt")


@tool(WORK, "ExecuteCodeTask",
      example='set r = tool.AIWorker.ExecuteCodeTask("coder", "Sum the squares of 1..10", tools: ["fs.Read"])')
def execute_code_task(ctx: ToolContext, name: str, prompt: str, tools: list[str] | None = None,
                      max_iterations: int | None = None, timeout_s: float | None = None,
                      max_steps: int | None = None, config_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ask a worker to write a NeuroScript program for the task, run it in a sandboxed child
    interpreter and return its result (issue 13; see nslang.workers.codemode).

    The program's syntax or runtime errors go back to the model, which tries again. The program
    sees only the pure tools (str, math, list, map, json, time, error.New, io.Print) and the granted
    tools (the definition's tool_allowlist / tool_denylist apply; side effects need approval).

    Args:
        name: the worker definition's name or ID.
        prompt: the task.
        tools: tools ("fs.Read", "fs.*") and workers ("worker:NAME") the program may call.
        max_iterations: model calls at most (default 3).
        timeout_s: the task's time limit in seconds (default 600; never beyond the run's --timeout).
        max_steps: statements each program run may execute (default 100000).
        config_overrides: settings merged over the definition's base_config for this task.

    Returns:
        {"output": the program's return value (or its emitted text), "code": the program that ran
        last, "iterations": model calls, "errors": [{"attempt", "code", "name", "message", "line",
        "column", "source_line", "caret"}] (one per failed attempt), "task_id", "cost" (USD),
        "input_tokens", "output_tokens", "duration_ms", "tool_calls": [], "finish_reason"}.

    Raises:
        The refusals of ExecuteStatelessTask (4, 9, 18, 19, 20, 30, 40; no record); 37 when no program
        ran without error in max_iterations attempts; 31 when timeout_s ran out; 16 when a model call
        failed (recorded).
    """
    from .codemode import CodeRun, CodeTaskOptions

    options = CodeTaskOptions.build_code(tools, max_iterations, timeout_s, max_steps)
    result = _mgr(ctx).execute_stateless_task(name, prompt, config_overrides, agent=options, host=ctx.interpreter)
    run = result.run
    assert isinstance(run, CodeRun)
    return {**result.as_map(), "output": run.output, "code": run.code, "errors": run.errors}


@tool(WORK, "Map", example='set results = tool.AIWorker.Map("summarizer", prompts, max_concurrency: 8)')
def map_prompts(ctx: ToolContext, name: str, prompts: list[Any], max_concurrency: int | None = None,
                tools: list[str] | None = None, on_error: str = "collect",
                config_overrides: dict[str, Any] | None = None, max_iterations: int | None = None,
                timeout_s: float | None = None) -> list[Any]:
    """Run one stateless task per prompt concurrently and return the results in input order (issue 13;
    see nslang.workers.fanout). Each task leaves its own performance record.

    Args:
        name: the worker definition's name or ID.
        prompts: the prompts.
        max_concurrency: tasks running at once (1 to 64; default 4).
        tools: tools and procedures (and "worker:NAME") each task may call, as for ExecuteStatelessTask.
        on_error: "collect" (default: a failed item is an error value in its slot) or "fail" (the
            first failure is raised; items not started are not run).
        config_overrides: settings merged over the definition's base_config for every task.
        max_iterations: model calls per task at most, with tools (default 10).
        timeout_s: each task's time limit in seconds, with tools (default 600).

    Returns:
        A list, one entry per prompt in order: the map ExecuteStatelessTask returns, or an error value
        {"code", "message"}.

    Raises:
        4 for bad arguments; 9 for an unknown worker; with on_error "fail", the first failed item's
        error. A rate limit makes items wait (at most the definition's max_wait_s, never past the
        run's --timeout).
    """
    agent = None
    if tools is not None:
        from .agent import AgentOptions

        agent = AgentOptions.build(tools, max_iterations, timeout_s)
    elif max_iterations is not None or timeout_s is not None:
        raise InvalidArgumentError("max_iterations and timeout_s need tools")
    from .fanout import run_map

    return run_map(ctx.interpreter, name, prompts, max_concurrency=max_concurrency, on_error=on_error,
                   config_overrides=config_overrides, agent=agent)


@tool(WORK, "LogPerformance", arg_types={"timestamp_start": "any", "timestamp_end": "any"},
      example='set tid = tool.AIWorker.LogPerformance("t1", "external", id, "2025-01-01T10:00:00Z", '
              '"2025-01-01T10:00:02Z", 2000, true)')
def log_performance(ctx: ToolContext, task_id: str, instance_id: str, definition_id: str, timestamp_start: Any,
                    timestamp_end: Any, duration_ms: int, success: bool,
                    input_context: dict[str, Any] | None = None, llm_metrics: dict[str, Any] | None = None,
                    cost_incurred: float | None = None, output_summary: str | None = None,
                    error_details: str | None = None, supervisor_feedback: dict[str, Any] | None = None) -> str:
    """Log a performance record of work done outside the manager; it feeds the definition's summary.

    Args:
        task_id: the task's ID.
        instance_id: the instance (or any label) that did it.
        definition_id: the definition's ID (or unique name).
        timestamp_start: RFC 3339 string (fractional seconds optional) or a timedate.
        timestamp_end: RFC 3339 string or a timedate.
        duration_ms: duration in milliseconds.
        success: whether it succeeded.
        input_context: free map about the input.
        llm_metrics: e.g. {"input_tokens": 10, "output_tokens": 50} (counted in the summary).
        cost_incurred: USD.
        output_summary: short text.
        error_details: error text.
        supervisor_feedback: {"rating": number, "comments": …}; non-zero ratings feed
            average_quality_score.

    Returns:
        The task_id.

    Raises:
        4 for a bad timestamp ("invalid timestamp_start format '…'") or field; 9 if there is no such
        definition; 6 if the log cannot be written.
    """
    data = {k: v for k, v in {
        "task_id": task_id, "instance_id": instance_id, "definition_id": definition_id,
        "timestamp_start": timestamp_start, "timestamp_end": timestamp_end, "duration_ms": duration_ms,
        "success": success, "input_context": input_context, "llm_metrics": llm_metrics,
        "cost_incurred": cost_incurred, "output_summary": output_summary, "error_details": error_details,
        "supervisor_feedback": supervisor_feedback,
    }.items() if v is not None}
    return _mgr(ctx).log_performance(data).task_id


@tool(WORK, "GetPerformanceRecords",
      example='set fails = tool.AIWorker.GetPerformanceRecords("summarizer", {"success": false})')
def get_performance_records(ctx: ToolContext, definition_id: str,
                            filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The performance records of a definition (stateless tasks, chat turns, logged and retired), oldest first.

    Args:
        definition_id: the definition's ID (or unique name).
        filters: optional map; keys task_id, instance_id ("stateless" matches every stateless task),
            success (bool), duration_ms_gt, duration_ms_lt (ms), cost_incurred_gt, cost_incurred_lt (USD).

    Returns:
        A list of record maps (task_id, instance_id, definition_id, timestamp_start, timestamp_end,
        duration_ms, success, input_context, llm_metrics, cost_incurred, output_summary,
        error_details, supervisor_feedback).

    Raises:
        9 if there is no such definition; 4 for a bad filter; 6 if the log is corrupt.
    """
    return [_record_map(r) for r in _mgr(ctx).get_performance_records(definition_id, filters)]


@tool(WORK, "GetPerformanceSummary", example='set s = tool.AIWorker.GetPerformanceSummary("summarizer")')
def get_performance_summary(ctx: ToolContext, definition_id: str) -> dict[str, Any]:
    """The live performance summary of a definition.

    Args:
        definition_id: the definition's ID (or unique name).

    Returns:
        {total_tasks_attempted, successful_tasks, failed_tasks, average_success_rate (0..1),
        average_duration_ms, total_duration_ms, total_tokens_processed, total_cost_incurred (USD),
        average_quality_score, rated_tasks, last_activity_timestamp, total_instances_spawned,
        active_instances_count}.

    Raises:
        9 if there is no such definition.
    """
    return _mgr(ctx).get_summary(definition_id).model_dump(mode="json")


@tool(WORK, "SavePerformanceData", example="set msg = tool.AIWorker.SavePerformanceData()")
def save_performance_data(ctx: ToolContext) -> str:
    """Make sure performance data is on disk (records are appended as they happen) and save the
    definitions with their current summaries.

    Returns:
        A sentence with the number of log entries and definitions saved.

    Raises:
        6 if a file is corrupt or cannot be written.
    """
    entries, defs = _mgr(ctx).save_performance_data()
    return (f"Performance data is saved as each record is logged ({entries} log entries); "
            f"saved {defs} worker definitions with their summaries.")


@tool(WORK, "LoadPerformanceData", example="set msg = tool.AIWorker.LoadPerformanceData()")
def load_performance_data(ctx: ToolContext) -> str:
    """Re-read ai_worker_performance_data.json and rebuild every definition's summary from it.

    Returns:
        A sentence with the number of entries read and of definitions with records.

    Raises:
        6 if the log is corrupt or unreadable (it is left untouched).
    """
    entries, defs = _mgr(ctx).reload_performance_data()
    return f"Reloaded {entries} performance log entries; rebuilt the summaries of {defs} worker definitions."


TOOLS: tuple[Callable[..., Any], ...] = (
    definition_add, definition_get, definition_list, definition_update, definition_remove,
    definition_load_all, definition_save_all,
    instance_spawn, instance_get, instance_list_active, instance_retire, instance_update_status,
    instance_update_token_usage, instance_chat, instance_get_history,
    execute_stateless_task, execute_code_task, map_prompts, log_performance, get_performance_records,
    get_performance_summary,
    save_performance_data, load_performance_data,
)


def register_worker_tools(registry: ToolRegistry) -> None:
    """Register every AI worker tool in ``registry`` (the interpreter loads this lazily)."""
    for fn in TOOLS:
        registry.register(fn, replace=True)
