"""The ``meta`` tools, and the completeness of every built-in ToolSpec."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from nslang.tools.builtin import LAZY_PREFIXES, MODULES, all_tools
from nslang.tools.registry import ARG_TYPES, ToolRegistry, tool

GROUPS = {"fs": "fs", "strings": "str", "math_": "math", "lists": "list", "maps": "map", "json_": "json",
          "time_": "time", "io": "io", "meta": "meta"}

#: The 0.4.2 names of spec/language.md §8.5 that the built-in groups cover (core bundle).
UPSTREAM_NAMES = [
    "FS.Hash", "FS.LineCount", "FS.SanitizeFilename", "FS.Read", "FS.Write", "FS.Append", "FS.List", "FS.Mkdir",
    "FS.Delete", "FS.Stat", "FS.Move", "FS.Walk",
    "List.Length", "List.Append", "List.Prepend", "List.Get", "List.Slice", "List.Contains", "List.Reverse",
    "List.Sort", "List.Head", "List.Rest", "List.Tail", "List.IsEmpty",
    "Length", "Substring", "ToUpper", "ToLower", "TrimSpace", "Split", "SplitWords", "Join", "Concat", "Replace",
    "Contains", "HasPrefix", "HasSuffix", "LineCount",
    "Add", "Subtract", "Multiply", "Divide", "Modulo",
    "Print", "Input", "Time.Now", "Time.Sleep",
    "Meta.ListTools", "Meta.ToolsHelp", "Meta.GetToolSpecificationsJSON",
]


def test_every_module_registers_its_group() -> None:
    assert set(MODULES) == set(GROUPS)
    for mod in MODULES:
        m = importlib.import_module(f"nslang.tools.builtin.{mod}")
        assert m.TOOLS, mod
        assert {f.__ns_tool_spec__.group for f in m.TOOLS} == {GROUPS[mod]}


def test_lazy_prefixes_cover_every_ungrouped_alias() -> None:
    for mod in MODULES:
        specs = [f.__ns_tool_spec__ for f in importlib.import_module(f"nslang.tools.builtin.{mod}").TOOLS]
        prefixes = {a.lower().split(".")[0] for s in specs for a in s.aliases} - {s.group for s in specs}
        assert set(LAZY_PREFIXES[mod]) == prefixes, mod


def test_flat_aliases_work_with_lazy_registration() -> None:
    r = ToolRegistry()
    for mod in MODULES:
        m = f"nslang.tools.builtin.{mod}"

        def load(reg: ToolRegistry, m: str = m) -> None:
            for f in importlib.import_module(m).TOOLS:
                reg.register(f, replace=True)

        r.register_lazy(GROUPS[mod], load, aliases=LAZY_PREFIXES[mod])
    for name in UPSTREAM_NAMES:
        assert r.lookup(name) is not None, name


def test_all_tools_register_without_clashes() -> None:
    r = ToolRegistry()
    for f in all_tools():
        r.register(f)
    assert len(r) == len(all_tools())


@pytest.mark.parametrize("name", UPSTREAM_NAMES)
def test_upstream_names_resolve(interp: Any, name: str) -> None:
    t = interp.tools.lookup(name)
    assert t is not None, name
    assert name.lower() == t.spec.full_name.lower() or name in t.spec.aliases


@pytest.mark.parametrize("f", all_tools(), ids=lambda f: f.__ns_tool_spec__.full_name)
def test_every_spec_is_complete(f: Any) -> None:
    s = f.__ns_tool_spec__
    assert s.description and not s.description.startswith(" "), "description"
    assert s.example.startswith(("set ", "call ", "emit ")) and "\n" not in s.example, "one-line example"
    assert f"tool.{s.group}." in s.example, "the example calls the tool by its grouped name"
    assert s.return_type != "any" or s.full_name in ("list.Get", "list.Head", "map.Get", "json.Parse"), "return"
    assert s.return_help, "return help"
    for a in s.args:
        assert a.type in ARG_TYPES, a.name
        assert a.description, f"argument {a.name} has no description"
        assert not a.description.lower().startswith(a.name.lower() + ":")


def test_list_tools_one_signature_per_line(call: Any, interp: Any) -> None:
    text = call("meta.ListTools")
    lines = text.splitlines()
    assert len(lines) == len(interp.tools.all())
    assert "tool.fs.Read(filepath: string) -> string" in lines
    assert "tool.fs.List(path?: string = \".\", recursive?: bool = false) -> slice_any" in lines
    assert "tool.io.Print(...) -> nil" in lines
    assert all(line.startswith("tool.") for line in lines)


def test_tools_help_covers_every_tool(call: Any, interp: Any) -> None:
    text = call("Meta.ToolsHelp")
    for t in interp.tools.all():
        assert f"### tool.{t.spec.full_name}\n" in text
        assert t.spec.example in text
    assert "- `recursive` (bool, optional, default false):" in text
    assert "Also callable as: `tool.Length`" in text
    assert "Also callable as: `tool.FS.Read`" not in text  # same name up to case


def test_tools_help_filter(call: Any) -> None:
    text = call("meta.ToolsHelp", "fs")
    assert "### tool.fs.Read" in text and "### tool.str.Length" not in text
    text = call("meta.ToolsHelp", filter="tool.str.split")
    assert "### tool.str.Split\n" in text and "### tool.str.SplitWords" in text and "fs.Read" not in text
    assert "### tool.str.Length" in call("meta.ToolsHelp", "length")  # finds aliases and names
    assert call("meta.ToolsHelp", "no-such-tool") == "No tools match 'no-such-tool'.\n"


def test_help_includes_host_tools(call: Any, interp: Any) -> None:
    @tool("text", "Shout")
    def shout(text: str, times: int = 1) -> str:
        """Upper-case text.

        Args:
            text: what to shout.
            times: how many exclamation marks.
        """
        return text.upper() + "!" * times

    interp.tools.register(shout)
    assert "tool.text.Shout(text: string, times?: int = 1) -> string" in call("meta.ListTools")
    assert "- `times` (int, optional, default 1): how many exclamation marks." in call("meta.ToolsHelp", "shout")


def test_specifications_json(call: Any, interp: Any) -> None:
    specs = json.loads(call("meta.GetToolSpecificationsJSON"))
    assert len(specs) == len(interp.tools.all())
    read = next(s for s in specs if s["name"] == "fs.Read")
    assert read["group"] == "fs" and read["return_type"] == "string" and "FS.Read" in read["aliases"]
    assert read["args"] == [{"name": "filepath", "type": "string", "required": True, "default": None,
                             "description": "file path relative to the sandbox directory."}]
    hash_ = next(s for s in specs if s["name"] == "fs.Hash")
    assert hash_["args"][1]["default"] == "sha256" and hash_["args"][1]["required"] is False


@pytest.mark.parametrize("f", all_tools(), ids=lambda f: f.__ns_tool_spec__.full_name)
def test_every_example_parses(f: Any) -> None:
    parser = pytest.importorskip("nslang.parser")
    example = f.__ns_tool_spec__.example
    parser.parse(f"command\n  {example}\nendcommand\n", name="example")
