"""``nslang workers list|show|perf``: AI worker definitions, summaries and performance records as
readable tables, and the REPL's ``:workers`` overview.

Everything here reads the sandbox's files (``ai_worker_definitions.json`` and
``ai_worker_performance_data.json``, see :mod:`nslang.workers.store` and
:mod:`nslang.workers.perflog`). Nothing is written but caches: the summaries checkpoint
(``ai_worker_summaries.json``) when it was missing or out of date, and the removal of temporary files
that a killed write left behind.

* ``list`` and ``show`` need each definition's performance summary, which the manager loads from the
  summaries checkpoint (``ai_worker_summaries.json``) plus the log written after it; without a
  usable checkpoint it reads the whole log once (about 3 s per 100k records) and writes one.
* ``perf`` shows the most recent records and stays fast on any log size: it reads the log backwards
  from its end, a block at a time, and stops once it has the records asked for. nslang writes one
  log entry per line, so each line is parsed on its own; a log in another layout (a Go-era,
  pretty-printed array) falls back to the manager's full read.

Costs are USD; durations milliseconds; times UTC. Every printed cell and line goes through
:func:`nslang.terminal.escape_controls`: a name or reply holding control characters is shown escaped.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ._redact import scrub
from .terminal import escape_controls

if TYPE_CHECKING:  # pragma: no cover
    from .workers import AIWorkerManager

__all__ = ["definitions_table", "tail_records", "workers_command", "workers_overview"]

EXIT_OK, EXIT_USAGE, EXIT_RUNTIME = 0, 64, 70

DEFINITIONS_FILE = "ai_worker_definitions.json"
PERFORMANCE_FILE = "ai_worker_performance_data.json"
#: UUID5 namespace the manager gives hand-written definitions without an id (nslang.workers.manager).
_DEFAULT_ID_NAMESPACE = uuid.UUID("5b1d0f0e-8c55-4a8e-9a1c-6e2b6c0ad1f3")
_BLOCK = 64 * 1024


# ================================================================================================
# formatting helpers


def _table(rows: list[list[str]], header: list[str], right: frozenset[int] = frozenset()) -> str:
    """Columns separated by two spaces; ``right`` holds the indexes of right-aligned columns.

    Cells are escaped (:func:`~nslang.terminal.escape_controls`) before they are measured."""
    rows = [[escape_controls(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for r in [header, *rows]:
        cells = []
        for i, c in enumerate(r):
            last = i == len(r) - 1
            cells.append(c.rjust(widths[i]) if i in right else (c if last else c.ljust(widths[i])))
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def _cost(v: float) -> str:
    if not v:
        return "0"
    if v >= 1:
        return f"{v:,.2f}"
    return f"{v:.6f}".rstrip("0").rstrip(".") if v >= 1e-6 else f"{v:.2e}"


def _int(v: Any) -> str:
    try:
        return f"{int(v):,}"
    except (TypeError, ValueError, OverflowError):  # a hand-edited log: "x", [1], Infinity, 5000 digits
        return "-"


def _cost_cell(v: Any) -> str:
    """A record's cost: ``-`` when the (hand-editable) log holds something that is not a number."""
    if v is None:
        return "0"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "-"
    try:
        return _cost(float(v))
    except OverflowError:
        return "-"


def _when(ts: Any) -> str:
    """A timestamp (datetime or RFC 3339 text) as ``YYYY-MM-DD HH:MM:SS`` UTC; ``-`` when absent."""
    if ts is None or ts == "":
        return "-"
    if isinstance(ts, str):
        try:
            text = ts[:-1] + "+00:00" if ts.endswith(("Z", "z")) else ts
            if "." in text:  # Go writes up to nanoseconds; Python reads up to microseconds
                head, _, rest = text.partition(".")
                digits = "".join(ch for ch in rest if ch.isdigit())
                text = f"{head}.{digits[:6]}{rest[len(digits):]}"
            ts = _dt.datetime.fromisoformat(text)
        except ValueError:
            return str(ts)[:19]
    if isinstance(ts, _dt.datetime):
        if ts.tzinfo is not None:
            ts = ts.astimezone(_dt.timezone.utc)
        return str(ts.strftime("%Y-%m-%d %H:%M:%S"))
    return str(ts)


def _short(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _used(used: int, limit: int, tracked: bool = True) -> str:
    """``used/limit``, or ``used`` without a limit, or ``-`` when usage is not recorded (no limit at all)."""
    if not tracked:
        return "-"
    return f"{used:,}/{limit:,}" if limit else f"{used:,}"


def _tracked(lim: Any) -> bool:
    """Usage is recorded only for definitions with a request or token limit (nslang.workers.limits)."""
    return bool(lim.max_requests_per_minute or lim.max_tokens_per_minute or lim.max_tokens_per_day)


def _value(v: Any) -> str:
    if hasattr(v, "value") and not isinstance(v, (str, bytes)):
        return str(v.value)
    return str(v)


# ================================================================================================
# definitions: list, show, :workers


def _manager(sandbox: Path) -> AIWorkerManager:
    from .workers import AIWorkerManager

    return AIWorkerManager(sandbox)


def definitions_table(mgr: AIWorkerManager, *, live: bool = False) -> str:
    """One row per definition: status, rate-window usage (used/limit), tasks, success, tokens, cost.

    ``live`` adds the number of active instances in this process (the REPL's ``:workers``).
    """
    defs = mgr.list_definitions()
    rows: list[list[str]] = []
    for d in defs:
        s = d.aggregate_performance_summary
        usage = mgr.rate_limit_usage(d.definition_id)
        lim = d.rate_limits
        model = f"{_value(d.provider)}/{d.model_name}" if d.model_name else _value(d.provider)
        tasks = s.total_tasks_attempted if s else 0
        ok = f"{s.average_success_rate * 100:.0f}%" if s and tasks else "-"
        on = _tracked(lim)
        row = [d.name, model, _value(d.status),
               _used(usage.get("requests_last_minute", 0), lim.max_requests_per_minute, on),
               _used(usage.get("tokens_last_minute", 0), lim.max_tokens_per_minute, on),
               _used(usage.get("tokens_last_day", 0), lim.max_tokens_per_day, on),
               _int(tasks), ok, _int(s.total_tokens_processed if s else 0),
               _cost(s.total_cost_incurred if s else 0.0)]
        if live:
            row.insert(3, _int(s.active_instances_count if s else 0))
        rows.append(row)
    header = ["NAME", "PROVIDER/MODEL", "STATUS", "REQ/1m", "TOK/1m", "TOK/24h", "TASKS", "OK", "TOKENS", "COST $"]
    right = frozenset({3, 4, 5, 6, 7, 8, 9})
    if live:
        header.insert(3, "LIVE")
        right = frozenset(i + 1 for i in right) | {3}
    return _table(rows, header, right)


def workers_overview(get_manager: Callable[[], AIWorkerManager]) -> str:
    """The REPL's ``:workers``: the definitions table (with live instances), or why there is none."""
    try:
        mgr = get_manager()
    except ImportError as e:
        return f"AI workers are not available in this installation ({e})"
    from .errors import NSError

    try:
        if not mgr.list_definitions():
            return (f"no AI worker definitions in {mgr.sandbox_dir}\n"
                    'add one with: call tool.AIWorkerDefinition.Add(name: "helper", provider: "test")')
        return (definitions_table(mgr, live=True)
                + "\n(REQ/TOK: used in the current rate window / limit; COST in USD; LIVE: active instances)")
    except NSError as e:
        return escape_controls(e.render(), keep="\n")


def _show(mgr: AIWorkerManager, name: str) -> str:
    d = mgr.get_definition(name)
    s = d.aggregate_performance_summary
    usage = mgr.rate_limit_usage(d.definition_id)
    lim = d.rate_limits
    auth = _value(d.auth.method) + (f" {d.auth.value}" if d.auth.value else "")
    if d.auth.key_path:
        auth += f" (key path {d.auth.key_path})"
    cm = d.cost_metrics
    costs = ", ".join(f"{k} {_cost(v)}" for k, v in cm.items()) or "-"
    pairs: list[tuple[str, str]] = [
        ("definition_id", d.definition_id),
        ("provider", _value(d.provider)),
        ("model", d.model_name or "-"),
        ("status", _value(d.status)),
        ("interaction", ", ".join(_value(m) for m in d.interaction_models) or "-"),
        ("capabilities", ", ".join(d.capabilities) or "-"),
        ("auth", auth),
        ("base_config", json.dumps(d.base_config, ensure_ascii=False) if d.base_config else "-"),
        ("cost (USD)", costs),
        ("created", _when(d.created_timestamp)),
        ("modified", _when(d.modified_timestamp)),
    ]
    for extra in ("default_file_contexts", "tool_allowlist", "tool_denylist"):
        v = getattr(d, extra, None)
        if v:
            pairs.append((extra, ", ".join(v)))
    out = [escape_controls(d.name)] + [f"  {k:<15} {escape_controls(v)}" for k, v in pairs]
    on = _tracked(lim)
    live = usage.get("live_instances", 0) if lim.max_concurrent_active_instances else (
        s.active_instances_count if s else 0)
    wait = "error" if lim.on_limit != "wait" else (
        f"wait (at most {lim.max_wait_s:g} s)" if lim.max_wait_s else "wait (bounded by the run's timeout only)")
    out.append("rate limits (used / limit in the current window, every process sharing them; - = not recorded)")
    out += [
        f"  {'requests/1m':<15} {_used(usage.get('requests_last_minute', 0), lim.max_requests_per_minute, on)}",
        f"  {'tokens/1m':<15} {_used(usage.get('tokens_last_minute', 0), lim.max_tokens_per_minute, on)}",
        f"  {'tokens/24h':<15} {_used(usage.get('tokens_last_day', 0), lim.max_tokens_per_day, on)}",
        f"  {'instances':<15} {_used(live, lim.max_concurrent_active_instances)} active",
        f"  {'on limit':<15} {wait}",
    ]
    out.append("performance summary")
    if s is None or not s.total_tasks_attempted:
        out.append("  no tasks yet")
        if s is not None and s.total_instances_spawned:
            out.append(f"  {'instances':<15} {s.total_instances_spawned:,} spawned")
    else:
        quality = f"{s.average_quality_score:.2f} ({s.rated_tasks:,} rated)" if s.rated_tasks else "- (none rated)"
        out += [
            f"  {'tasks':<15} {s.total_tasks_attempted:,} attempted, {s.successful_tasks:,} succeeded, "
            f"{s.failed_tasks:,} failed ({s.average_success_rate * 100:.1f}% success)",
            f"  {'duration':<15} {s.average_duration_ms:,.0f} ms average, {s.total_duration_ms:,} ms total",
            f"  {'tokens':<15} {s.total_tokens_processed:,}",
            f"  {'cost (USD)':<15} {_cost(s.total_cost_incurred)}",
            f"  {'quality':<15} {quality}",
            f"  {'instances':<15} {s.total_instances_spawned:,} spawned",
            f"  {'last activity':<15} {_when(s.last_activity_timestamp)}",
        ]
    return "\n".join(out)


# ================================================================================================
# perf: the tail of the performance log


class _NotLineLayoutError(Exception):
    """The log is not one entry per line (a Go-era pretty-printed array): read it the slow way."""


def _reverse_lines(path: Path) -> Iterator[bytes]:
    """The lines of a file from the last to the first, reading blocks backwards from the end."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        pos = f.tell()
        rest = b""
        while pos > 0:
            size = min(_BLOCK, pos)
            pos -= size
            f.seek(pos)
            data = f.read(size) + rest
            lines = data.split(b"\n")
            rest = lines[0]
            yield from reversed(lines[1:])
        yield rest


def tail_records(path: Path, limit: int, definition_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """The last ``limit`` performance records of the log (oldest first), optionally only those of
    ``definition_ids``. Reads the file backwards and stops as soon as it has them.

    Raises:
        _NotLineLayoutError: the file is not in nslang's one-entry-per-line layout.
        OSError: the file cannot be read.
    """
    found: list[dict[str, Any]] = []
    first = True
    for raw in _reverse_lines(path):
        line = raw.strip().rstrip(b",").strip()
        if not line or line in (b"[", b"]", b"null"):
            continue
        if line.startswith(b"["):
            line = line[1:].strip()
        if line.endswith(b"]") and not line.endswith(b"}]"):
            line = line[:-1].strip().rstrip(b",")
        try:
            entry = json.loads(line)
        except (RecursionError, ValueError) as e:
            if not isinstance(e, json.JSONDecodeError):  # nested too deeply, a number too long: the
                raise _NotLineLayoutError() from None    # manager's reader reports the corrupt file
            if first:  # a torn tail (an interrupted append): the reader skips it too
                first = False
                continue
            raise _NotLineLayoutError() from None
        first = False
        if not isinstance(entry, dict):
            raise _NotLineLayoutError()
        records = entry.get("performance_records")
        if not isinstance(records, list):
            continue
        entry_def = entry.get("definition_id")
        for rec in reversed(records):
            if not isinstance(rec, dict):
                continue
            def_id = rec.get("definition_id") or entry_def
            if definition_ids is not None and def_id not in definition_ids:
                continue
            found.append({**rec, "definition_id": def_id})
            if len(found) >= limit:
                return found[::-1]
    return found[::-1]


def _definition_names(sandbox: Path) -> tuple[dict[str, str], list[str]]:
    """definition id → name, read from the definitions file alone (the log is not touched), and the
    keys those definitions resolve to here (to redact records written before nslang redacted them)."""
    from .workers.keys import known_keys
    from .workers.store import DefinitionStore

    raw, _sig = DefinitionStore(sandbox / DEFINITIONS_FILE).read()
    secrets = known_keys(raw, environ=os.environ, sandbox=sandbox)
    names: dict[str, str] = {}
    for obj in raw:
        name = obj.get("name")
        if not isinstance(name, str):
            continue
        def_id = obj.get("definition_id") or obj.get("definitionID") or obj.get("definitionId")
        if not isinstance(def_id, str) or not def_id:
            def_id = str(uuid.uuid5(_DEFAULT_ID_NAMESPACE, name))
        names[def_id] = name
    return names, secrets


def _perf_rows(records: list[dict[str, Any]], names: dict[str, str], secrets: list[str]) -> str:
    rows = []
    for r in records:
        raw_metrics = r.get("llm_metrics")
        metrics: dict[str, Any] = raw_metrics if isinstance(raw_metrics, dict) else {}
        ok = r.get("success") is True
        text = r.get("output_summary") if ok else (r.get("error_details") or r.get("output_summary"))
        def_id = str(r.get("definition_id") or "")
        tin, tout = metrics.get("input_tokens"), metrics.get("output_tokens")
        rows.append([
            _when(r.get("timestamp_end") or r.get("timestamp_start")),
            names.get(def_id, def_id[:8] or "-"),
            str(r.get("task_id") or "-")[:8],
            "ok" if ok else "FAIL",
            _int(r.get("duration_ms", 0)),
            f"{_int(tin or 0)}/{_int(tout or 0)}",
            _cost_cell(r.get("cost_incurred")),
            _short(scrub(str(text or ""), secrets), 48),
        ])
    return _table(rows, ["TIME (UTC)", "WORKER", "TASK", "OK", "MS", "TOK IN/OUT", "COST $", "OUTPUT / ERROR"],
                  frozenset({4, 5, 6}))


def _perf_steps(records: list[dict[str, Any]], secrets: list[str]) -> str:
    """The steps of tool-calling tasks (``llm_metrics.steps``, issue 12 item 4), one line each."""
    lines: list[str] = []
    for r in records:
        metrics = r.get("llm_metrics") if isinstance(r.get("llm_metrics"), dict) else {}
        steps = metrics.get("steps") if isinstance(metrics, dict) else None
        if not isinstance(steps, list) or not steps:
            continue
        lines.append(f"task {str(r.get('task_id') or '-')[:8]}: {_int(metrics.get('iterations', 0))} model calls, "
                     f"{_int(metrics.get('tool_call_count', 0))} tool calls")
        for st in steps:
            if not isinstance(st, dict):
                continue
            if st.get("kind") == "model":
                calls = st.get("tool_calls") if isinstance(st.get("tool_calls"), list) else []
                what = f"asks for {', '.join(str(c) for c in calls)}" if calls else "answers"
                line = (f"#{_int(st.get('iteration', 0))} model  {_int(st.get('duration_ms', 0))} ms  "
                        f"{_int(st.get('input_tokens', 0))}/{_int(st.get('output_tokens', 0))} tokens  {what} "
                        f"({st.get('finish_reason') or '-'})")
                cost = st.get("cost")
                if isinstance(cost, (int, float)) and not isinstance(cost, bool):
                    line += f"  {cost:.6g} USD"
                if st.get("cached") is True:
                    line += "  cached"
                if st.get("served_by"):
                    line += f"  served by {st['served_by']}"
            else:
                state = "ok" if st.get("ok") is True else "FAIL " + str(st.get("error") or "")
                flagged = f"  flagged: {', '.join(map(str, st['flags']))}" if st.get("flags") else ""
                line = f"#{_int(st.get('iteration', 0))} tool  {_int(st.get('duration_ms', 0))} ms  " \
                       f"{st.get('name')}  {state}{flagged}"
            lines.append("  " + _short(scrub(line, secrets), 160))
        if metrics.get("steps_not_recorded"):
            lines.append(f"  … {_int(metrics['steps_not_recorded'])} more steps not recorded")
    return "\n".join(lines)


def _perf(sandbox: Path, name: str | None, limit: int, out: IO[str], err: IO[str], verbose: bool = False) -> int:
    names, secrets = _definition_names(sandbox)
    wanted: set[str] | None = None
    if name:
        wanted = {i for i, n in names.items() if n == name} or ({name} if name in names else set())
        if not wanted:
            err.write(f"nslang: no AI worker definition named {name!r} in {sandbox}"
                      f"{' (known: ' + escape_controls(', '.join(sorted(names.values()))) + ')' if names else ''}\n")
            return EXIT_USAGE
    path = sandbox / PERFORMANCE_FILE
    if not path.exists():
        out.write(f"no performance records yet ({path} does not exist)\n")
        return EXIT_OK
    try:
        records = tail_records(path, limit, wanted)
    except OSError as e:  # a directory, no permission…: the same error the manager gives
        from .workers.errors import StoreError

        raise StoreError(f"performance log {path} is unusable: cannot read it: {e.strerror or e}",
                         path=path) from None
    except _NotLineLayoutError:
        mgr = _manager(sandbox)
        refs = sorted(wanted) if wanted is not None else [d.definition_id for d in mgr.list_definitions()]
        records = []
        for ref in refs:
            records += [r.model_dump(mode="json") for r in mgr.get_performance_records(ref)]
        records.sort(key=lambda r: str(r.get("timestamp_end") or ""))
        records = records[-limit:]
    if not records:
        out.write("no performance records" + (f" for {name}" if name else "") + "\n")
        return EXIT_OK
    out.write(_perf_rows(records, names, secrets) + "\n")
    steps = _perf_steps(records, secrets) if verbose else ""
    if steps:
        out.write(escape_controls(steps, keep="\n") + "\n")
    return EXIT_OK


# ================================================================================================
# the subcommand


def sandbox_path(arg: str | None) -> Path:
    """``--sandbox``, else ``$NSLANG_SANDBOX``, else the platformdirs user data dir (not created)."""
    raw = arg or os.environ.get("NSLANG_SANDBOX")
    if raw:
        return Path(raw).expanduser().resolve()
    from platformdirs import user_data_dir

    return Path(user_data_dir("nslang", appauthor=False))


def workers_command(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """``nslang workers list | show NAME | perf [NAME] [--limit N]``; returns the exit code.

    Errors of the worker subsystem (a corrupt file, an unknown definition) propagate as
    :class:`~nslang.errors.NSError` for the CLI to report.
    """
    sandbox = sandbox_path(getattr(args, "sandbox", None))
    action = args.action
    name = getattr(args, "name", None)
    try:
        import nslang.workers  # noqa: F401
    except ImportError as e:
        err.write(f"nslang: AI workers are not available in this installation ({e})\n")
        return EXIT_RUNTIME
    if action == "perf":
        limit = getattr(args, "limit", 20) or 20
        if limit < 1:
            err.write("nslang: --limit must be at least 1\n")
            return EXIT_USAGE
        return _perf(sandbox, name, limit, out, err, bool(getattr(args, "verbose", False)))
    if action == "show" and not name:
        err.write("nslang: workers show needs a definition name (nslang workers list shows them)\n")
        return EXIT_USAGE
    if action == "list" and name:
        err.write("nslang: workers list takes no name (did you mean: nslang workers show NAME?)\n")
        return EXIT_USAGE
    if not (sandbox / DEFINITIONS_FILE).exists():
        if action == "show":
            err.write(f"nslang: no AI worker definition named {name!r}: {sandbox} has no definitions\n")
            return EXIT_USAGE
        out.write(f"no AI worker definitions in {sandbox}\n")
        return EXIT_OK
    mgr = _manager(sandbox)
    if action == "list":
        if not mgr.list_definitions():
            out.write(f"no AI worker definitions in {sandbox}\n")
            return EXIT_OK
        out.write(definitions_table(mgr) + "\n")
        return EXIT_OK
    from .workers.errors import NotFoundError

    try:
        out.write(_show(mgr, str(name)) + "\n")
    except NotFoundError:
        known = escape_controls(", ".join(d.name for d in mgr.list_definitions()))
        err.write(f"nslang: no AI worker definition named {name!r} in {sandbox}"
                  f"{' (known: ' + known + ')' if known else ''}\n")
        return EXIT_USAGE
    return EXIT_OK
