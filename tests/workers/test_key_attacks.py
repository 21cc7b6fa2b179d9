"""Issue 10 items 1 and 2 replayed: key files outside what the user allowed, keys with stray bytes, keys
echoed back by a provider. Each test sends real HTTP requests to a loopback server standing in for the
script's own ``base_url`` (the place a hostile script would send a stolen key)."""

from __future__ import annotations

import io
import json
import os
import stat
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from nslang import Interpreter
from nslang._redact import contains_secret, redact, scrub
from nslang.cli import main
from nslang.errors import LLMError, NSRuntimeError
from nslang.llm.base import override_allow_model_requests
from nslang.workers import AIWorkerManager
from nslang.workers.errors import ConfigurationError, InvalidArgumentError
from nslang.workers.keys import MAX_KEY_FILE_BYTES, user_config_dir

OUTSIDE = "root:x:0:0:OUTSIDE-SECRET-CONTENT:/root:/bin/bash\nline-two-OUTSIDE-SECRET\n"
#: A key with every character that gets escaped somewhere: JSON, repr, URL, HTML.
KEY = 'sk-Attack/Key+With"Quote\\Back=Slash&amp<1234567890'


@pytest.fixture(scope="module")
def _server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def server(_server: HTTPServer) -> Iterator[HTTPServer]:
    _server.clear()
    with override_allow_model_requests(True):
        yield _server


def _openai_reply(text: str) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}


def _echo_auth(req: Request) -> Response:
    """Answers with the bearer token it received (what a gateway of the script's author would log)."""
    token = req.headers.get("authorization", "")
    return Response(json.dumps(_openai_reply(f"you sent {token}")), content_type="application/json")


def _add(m: AIWorkerManager, server: HTTPServer, name: str, auth: dict[str, str]) -> None:
    m.add_definition({"name": name, "provider": "openai", "model_name": "gpt-test", "interaction_models": ["both"],
                      "auth": auth, "base_config": {"base_url": server.url_for("/v1"), "max_retries": 0}})


def _hand_written(box: Path, name: str, auth: dict[str, str], base_url: str) -> None:
    """A definitions file as a user (or another tool) might write it, bypassing the checks of Add."""
    (box / "ai_worker_definitions.json").write_text(json.dumps([{
        "name": name, "provider": "openai", "model_name": "gpt-test", "interaction_models": ["both"], "auth": auth,
        "base_config": {"base_url": base_url, "max_retries": 0}}]))


def _every_text(sandbox: Path, *extra: Any) -> str:
    parts = [repr(x) for x in extra] + [str(x) for x in extra]
    for p in sandbox.rglob("*"):
        if p.is_file() and not p.is_symlink():
            parts.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


# ============================================================================ item 1: where key files live


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A secret file outside the sandbox and outside the config dir; the sandbox holds links to it."""
    secret = tmp_path / "elsewhere" / "passwd"
    secret.parent.mkdir()
    secret.write_text(OUTSIDE)
    (tmp_path / "elsewhere" / "keys.json").write_text(json.dumps({"openai": {"api_key": "sk-json-OUTSIDE-0000"}}))
    box = tmp_path / "sandbox"
    box.mkdir()
    os.symlink(secret, box / "link.key")
    os.symlink(secret.parent, box / "linkdir")
    os.symlink(tmp_path / "elsewhere" / "missing", box / "dangling.key")
    return secret


@pytest.mark.parametrize("value,key_path", [
    ("/etc/passwd", ""),
    ("{outside}", ""),
    ("{outside_json}", "openai.api_key"),
    ("../elsewhere/passwd", ""),
    ("sub/../../elsewhere/passwd", ""),
    ("link.key", ""),
    ("linkdir/passwd", ""),
    ("linkdir/keys.json", "openai.api_key"),
    ("~/../../../../../etc/passwd", ""),
    ("{config}/../../elsewhere/passwd", ""),
])
def test_key_files_outside_the_allowed_places_are_refused(server: HTTPServer, outside: Path, tmp_path: Path,
                                                          value: str, key_path: str) -> None:
    value = value.format(outside=outside, outside_json=outside.parent / "keys.json", config=user_config_dir())
    server.expect_request("/v1/chat/completions").respond_with_handler(_echo_auth)
    box = tmp_path / "sandbox"
    auth = {"method": "config_path", "value": value, "key_path": key_path}
    m = AIWorkerManager(box, environ={})
    with pytest.raises(ConfigurationError) as at_add:  # refused when the definition is added
        _add(m, server, "thief", auth)
    _add(m, server, "thief", {"method": "env_var", "value": "UNSET"})
    with pytest.raises(ConfigurationError) as at_update:  # and when it is changed
        m.update_definition("thief", {"auth": auth})
    # a definitions file written by hand is checked at call time
    _hand_written(box, "thief", auth, server.url_for("/v1"))
    with pytest.raises(ConfigurationError) as at_call:
        AIWorkerManager(box, environ={}).execute_stateless_task("thief", "hi")
    for err in (at_add.value, at_update.value, at_call.value):
        assert err.code == 18
        assert "not in a place key files may be read from" in err.message
        text = _every_text(box, err, err.message)
        assert "OUTSIDE" not in text and "root:x" not in text
    assert not server.log  # nothing was sent


def test_refusal_does_not_reveal_whether_an_outside_path_exists(tmp_path: Path, outside: Path) -> None:
    box = tmp_path / "sandbox"
    messages = []
    for value in [str(outside), str(outside.parent / "no-such-file"), "link.key", "dangling.key"]:
        _hand_written(box, "d", {"method": "config_path", "value": value}, "http://127.0.0.1:9/v1")
        with pytest.raises(ConfigurationError) as ei:
            AIWorkerManager(box, environ={}).execute_stateless_task("d", "hi")
        messages.append(ei.value.message.replace(value, "PATH"))
        with pytest.raises(ConfigurationError) as ei:
            AIWorkerManager(box, environ={}).add_definition(
                {"name": "e", "provider": "test", "auth": {"method": "config_path", "value": value}})
        messages.append(ei.value.message.replace(value, "PATH").replace("'e'", "'d'"))
    assert len(set(messages)) == 1, messages


def test_key_files_in_the_sandbox_and_the_config_dir_work(server: HTTPServer, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    server.expect_request("/v1/chat/completions").respond_with_handler(_echo_auth)
    box = tmp_path / "sandbox"
    (box / "keys").mkdir(parents=True)
    (box / "keys" / "a.key").write_text("sk-sandbox-file-key-0001\r\n")
    config = user_config_dir()
    config.mkdir(parents=True, exist_ok=True)
    (config / "b.json").write_text(json.dumps({"openai": {"api_key": " sk-config-json-key-0002 "}}))
    # '~' expands to the home directory; point it at a tree whose config dir is the temporary one
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    (home / ".config" / "nslang").mkdir(parents=True)
    (home / ".config" / "nslang" / "c.key").write_text("sk-home-config-key-0003\n")
    m = AIWorkerManager(box, environ={})
    _add(m, server, "a", {"method": "config_path", "value": "keys/a.key"})
    _add(m, server, "c", {"method": "config_path", "value": "~/.config/nslang/c.key"})
    assert m.execute_stateless_task("a", "hi").output == "you sent Bearer ****0001"
    assert m.execute_stateless_task("c", "hi").output == "you sent Bearer ****0003"
    sent = [req.headers["authorization"] for req, _resp in server.log]
    assert sent == ["Bearer sk-sandbox-file-key-0001", "Bearer sk-home-config-key-0003"]
    monkeypatch.undo()
    _add(m, server, "b", {"method": "config_path", "value": str(config / "b.json"), "key_path": "openai.api_key"})
    assert m.execute_stateless_task("b", "hi").output == "you sent Bearer ****0002"
    assert server.log[-1][0].headers["authorization"] == "Bearer sk-config-json-key-0002"


def test_key_files_saved_with_a_byte_order_mark_work(server: HTTPServer, tmp_path: Path) -> None:
    # Notepad and PowerShell 5's Out-File write a UTF-8 BOM: the key was refused as holding a "control
    # character" and a JSON key file as "not valid JSON" (adversarial review)
    server.expect_request("/v1/chat/completions").respond_with_handler(_echo_auth)
    box = tmp_path / "sandbox"
    box.mkdir()
    (box / "bom.key").write_bytes(b"\xef\xbb\xbfsk-bom-file-key-0004\r\n")
    (box / "bom.json").write_bytes(b'\xef\xbb\xbf{"openai": {"api_key": "sk-bom-json-key-0005"}}')
    m = AIWorkerManager(box, environ={})
    _add(m, server, "k", {"method": "config_path", "value": "bom.key"})
    _add(m, server, "j", {"method": "config_path", "value": "bom.json", "key_path": "openai.api_key"})
    assert m.execute_stateless_task("k", "hi").output == "you sent Bearer ****0004"
    assert m.execute_stateless_task("j", "hi").output == "you sent Bearer ****0005"
    sent = [req.headers["authorization"] for req, _resp in server.log]
    assert sent == ["Bearer sk-bom-file-key-0004", "Bearer sk-bom-json-key-0005"]


def test_a_symlink_out_of_the_config_dir_is_refused(tmp_path: Path, outside: Path) -> None:
    config = user_config_dir()
    config.mkdir(parents=True, exist_ok=True)
    link = config / "stolen.key"
    os.symlink(outside, link)
    try:
        box = tmp_path / "sandbox"
        _hand_written(box, "t", {"method": "config_path", "value": str(link)}, "http://127.0.0.1:9/v1")
        with pytest.raises(ConfigurationError, match="not in a place key files may be read from") as ei:
            AIWorkerManager(box, environ={}).execute_stateless_task("t", "hi")
        assert "OUTSIDE" not in ei.value.message
    finally:
        link.unlink()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_odd_key_files_are_refused_without_content(tmp_path: Path) -> None:
    box = tmp_path / "sandbox"
    box.mkdir()
    os.mkfifo(box / "fifo")  # reading it would block forever
    (box / "big.key").write_text("sk-" + "A" * MAX_KEY_FILE_BYTES)
    (box / "multi.key").write_text("sk-first-line-SECRET\nsk-second-line-SECRET\n")
    (box / "deep.json").write_text("[" * 30_000 + "]" * 30_000)
    (box / "dir.key").mkdir()
    m = AIWorkerManager(box, environ={})
    cases = {"fifo": "not a regular file", "big.key": "larger than", "multi.key": "control character",
             "deep.json": "nested too deeply", "dir.key": "cannot be read"}
    for i, (value, why) in enumerate(cases.items()):
        m.add_definition({"name": f"d{i}", "provider": "test", "auth": {
            "method": "config_path", "value": value, "key_path": "a" if value.endswith(".json") else ""}})
        with pytest.raises(ConfigurationError, match=why) as ei:
            m.execute_stateless_task(f"d{i}", "hi")
        assert "SECRET" not in ei.value.message and "AAAA" not in ei.value.message


def test_script_cannot_send_etc_passwd_to_its_own_url(server: HTTPServer, tmp_path: Path) -> None:
    """The attack as a script run by ``nslang run``: stderr names the rule, shows nothing of the file."""
    server.expect_request("/v1/chat/completions").respond_with_handler(_echo_auth)
    src = tmp_path / "thief.ns"
    src.write_text(
        'func main() means\n'
        '  call tool.AIWorkerDefinition.Add(name: "t", provider: "openai", model_name: "m", '
        'auth: {"method": "config_path", "value": "/etc/passwd"}, '
        f'base_config: {{"base_url": "{server.url_for("/v1")}"}})\n'
        '  emit tool.AIWorker.ExecuteStatelessTask("t", "hi")\n'
        'endfunc\n')
    out, err = io.StringIO(), io.StringIO()
    code = main(["run", "--sandbox", str(tmp_path / "box"), str(src)], stdout=out, stderr=err)
    assert code == 70
    assert "not in a place key files may be read from" in err.getvalue()
    assert "root:" not in err.getvalue() + out.getvalue()
    assert not server.log


# ============================================================================ item 2: stray bytes


@pytest.mark.parametrize("raw", [KEY + "\r", KEY + "\n", KEY + "\r\n", "  " + KEY + "\t\n"])
def test_env_keys_from_a_crlf_env_file_are_stripped(server: HTTPServer, tmp_path: Path, raw: str) -> None:
    server.expect_request("/v1/chat/completions").respond_with_handler(_echo_auth)
    m = AIWorkerManager(tmp_path / "sandbox", environ={"OPENAI_API_KEY": raw})
    _add(m, server, "w", {"method": "env_var", "value": "OPENAI_API_KEY"})
    assert m.execute_stateless_task("w", "hi").output == f"you sent Bearer {redact(KEY)}"
    assert server.log[0][0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("raw", ["sk-in\nside-SECRET-1234", "sk-in\rside-SECRET-1234", "sk-esc\x1b]0;x\x07-SECRET",
                                 "sk-nul\x00-SECRET-1234", "sk-sep\u2028-SECRET-1234", "sk-del\x7f-SECRET-12"])
def test_keys_with_control_characters_are_refused_by_name(server: HTTPServer, tmp_path: Path, raw: str) -> None:
    server.expect_request("/v1/chat/completions").respond_with_handler(_echo_auth)
    m = AIWorkerManager(tmp_path / "sandbox", environ={"MY_KEY": raw})
    _add(m, server, "w", {"method": "env_var", "value": "MY_KEY"})
    with pytest.raises(ConfigurationError) as ei:
        m.execute_stateless_task("w", "hi")
    msg = ei.value.message
    assert "'w'" in msg and "'MY_KEY'" in msg and "control character" in msg
    assert "SECRET" not in _every_text(tmp_path / "sandbox", ei.value, msg)
    with pytest.raises(InvalidArgumentError) as ei2:  # an inline key is refused when it is set
        m.add_definition({"name": "i", "provider": "test", "auth": {"method": "inline", "value": raw}})
    assert "SECRET" not in str(ei2.value) and "auth.value" in ei2.value.message
    assert not server.log


def test_inline_keys_are_stripped(server: HTTPServer, tmp_path: Path) -> None:
    server.expect_request("/v1/chat/completions").respond_with_handler(_echo_auth)
    m = AIWorkerManager(tmp_path / "sandbox", environ={})
    _add(m, server, "w", {"method": "inline", "value": f"\t{KEY}\r\n"})
    assert m.get_definition("w").auth.value == redact(KEY)
    m.execute_stateless_task("w", "hi")
    assert server.log[0][0].headers["authorization"] == f"Bearer {KEY}"


def test_a_header_value_is_never_shown_in_an_error(server: HTTPServer, tmp_path: Path) -> None:
    """A printable non-ASCII key cannot go into a header: refused by the HTTP layer, value not shown."""
    m = AIWorkerManager(tmp_path / "sandbox", environ={"K": "sk-ünicode-SECRET-1234"})
    _add(m, server, "w", {"method": "env_var", "value": "K"})
    with pytest.raises(NSRuntimeError) as ei:
        m.execute_stateless_task("w", "hi")
    assert ei.value.code == 18 and "header 'authorization'" in ei.value.message
    assert "SECRET" not in _every_text(tmp_path / "sandbox", ei.value, ei.value.message)
    assert not server.log


def test_transport_errors_carrying_headers_are_scrubbed() -> None:
    """Whatever an HTTP client library writes about the request (here: its headers, repr-escaped), the
    shared HTTP layer's error text keeps no header value (every provider, before the manager sees it)."""
    from nslang.llm import anthropic, gemini, ollama, openai
    from nslang.llm.base import Message, ProviderConfig

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError(f"Illegal header value {request.headers.raw!r}")

    def client() -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(handler))

    for module, provider in ((openai, "openai"), (anthropic, "anthropic"), (gemini, "google"), (ollama, "ollama")):
        model = module.create_model(ProviderConfig(provider, "m", {}, api_key=KEY, http_client=client))
        with override_allow_model_requests(True), pytest.raises(LLMError) as ei:
            model.request([Message("user", "hi")], {"base_url": "http://127.0.0.1:9/v1", "max_retries": 0})
        text = f"{ei.value}\n{ei.value!r}\n{ei.value.message}\n{''.join(traceback.format_exception(ei.value))}"
        assert "Illegal header value" in text and "****7890" in text, text
        assert not contains_secret(text, [KEY]) and "Attack" not in text, text


# ============================================================================ item 2: echoes


def _forms(key: str) -> list[str]:
    import re
    from urllib.parse import quote, quote_plus

    lower_hex = re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(key, safe=""))
    return [key, repr(key)[1:-1], repr(key.encode())[2:-1], json.dumps(key)[1:-1], quote(key, safe=""),
            lower_hex, quote_plus(key), key.replace("&", "&amp;").replace('"', "&quot;").
            replace("<", "&lt;")]


def test_scrub_matches_every_form() -> None:
    for form in _forms(KEY):
        text = f"before {form} after"
        assert scrub(text, [KEY]) == f"before {redact(KEY)} after", form
        assert contains_secret(text, [KEY])
    assert scrub("nothing here", [KEY, None, "abc"]) == "nothing here"
    assert scrub("abc", ["abc"]) == "abc"  # secrets under 4 characters are not searched for


def test_a_reply_echoing_the_key_is_redacted_everywhere(server: HTTPServer, tmp_path: Path) -> None:
    forms = _forms(KEY)
    reply = " | ".join(forms)
    server.expect_request("/v1/chat/completions").respond_with_json(_openai_reply(reply))
    box = tmp_path / "sandbox"
    m = AIWorkerManager(box, environ={"K": KEY})
    _add(m, server, "w", {"method": "env_var", "value": "K"})
    result = m.execute_stateless_task("w", "hi")
    iid = m.spawn_instance("w").instance_id
    chat = m.chat(iid, "hello")
    assert result.output.count(redact(KEY)) == len(forms)
    assert chat.text == result.output
    history = m.get_history(iid)
    m.retire_instance(iid, "done")
    text = _every_text(box, result, chat, result.as_map(), history, m.get_performance_records("w"))
    for form in forms:
        assert form not in text, form
    assert not contains_secret(text, [KEY])
    # the CLI views read the files
    out, err = io.StringIO(), io.StringIO()
    assert main(["workers", "perf", "--sandbox", str(box)], stdout=out, stderr=err) == 0
    assert main(["workers", "show", "w", "--sandbox", str(box)], stdout=out, stderr=err) == 0
    assert "****" in out.getvalue() and not contains_secret(out.getvalue() + err.getvalue(), [KEY])


def test_an_error_body_echoing_the_key_is_redacted_before_it_is_cut(server: HTTPServer, tmp_path: Path) -> None:
    """The provider message is cut to 500 characters: a key straddling the cut must not leave a prefix."""
    padding = "x" * 480
    server.expect_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": f"{padding} bad key {KEY} and {json.dumps(KEY)}", "type": "invalid"}}, status=401)
    box = tmp_path / "sandbox"
    m = AIWorkerManager(box, environ={"K": KEY})
    _add(m, server, "w", {"method": "env_var", "value": "K"})
    with pytest.raises(LLMError) as ei:
        m.execute_stateless_task("w", "hi")
    text = _every_text(box, ei.value, ei.value.message, getattr(ei.value, "body", ""))
    assert "sk-Attack" not in text and not contains_secret(text, [KEY])


def test_script_and_repl_views_show_redacted_replies(server: HTTPServer, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from nslang.repl import run_piped

    server.expect_request("/v1/chat/completions").respond_with_handler(_echo_auth)
    monkeypatch.setenv("NSL_TEST_KEY", KEY + "\r\n")
    add = ('call tool.AIWorkerDefinition.Add(name: "w", provider: "openai", model_name: "m", '
           'auth: {"method": "env_var", "value": "NSL_TEST_KEY"}, '
           f'base_config: {{"base_url": "{server.url_for("/v1")}"}})')
    out = io.StringIO()
    interp = Interpreter(sandbox_dir=tmp_path / "a", stdout=out, stderr=io.StringIO())
    interp.load(f'func main() means\n  {add}\n  emit tool.AIWorker.ExecuteStatelessTask("w", "hi")\n'
                '  ask "w", "again" into r\n  emit r\nendfunc\n')
    interp.run()
    repl_out = io.StringIO()
    run_piped(io.StringIO(f'{add}\nask "w", "hi"\ntool.AIWorker.ExecuteStatelessTask("w", "x")\n'), repl_out,
              sandbox_dir=tmp_path / "b")
    for text in (out.getvalue(), repl_out.getvalue()):
        assert redact(KEY) in text and not contains_secret(text, [KEY]), text


# ============================================================================ item 2: private files


pytestmark_posix = pytest.mark.skipif(os.name != "posix", reason="POSIX modes")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytestmark_posix
def test_parse_cache_is_private_even_when_it_existed_loose() -> None:
    from nslang import parser

    d = parser._cache_dir()
    assert d is not None
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d.parent, 0o755)
    os.chmod(d, 0o777)
    old = d / "old-entry"
    old.write_bytes(b"x")
    os.chmod(old, 0o644)
    parser._PRIVATE_DIRS.clear()
    parser.parse('func main() means\n  set k = "sk-inline-SECRET"\nendfunc\n', name="k.ns")
    assert _mode(d.parent) == 0o700 and _mode(d) == 0o700
    assert _mode(old) == 0o600
    entries = [p for p in d.iterdir() if p != old]
    assert entries and all(_mode(p) == 0o600 for p in entries)


@pytestmark_posix
def test_lark_table_cache_is_private() -> None:
    from nslang import _lark

    _lark.get_parser.cache_clear()
    cache = _lark._cache_file()
    assert isinstance(cache, str)
    _lark.get_parser()
    assert _mode(Path(cache).parent) == 0o700 and _mode(Path(cache)) == 0o600


@pytestmark_posix
def test_repl_history_is_private(tmp_path: Path) -> None:
    from platformdirs import user_data_dir

    from nslang.repl import private_history_file

    own = Path(user_data_dir("nslang", appauthor=False))
    own.mkdir(parents=True, exist_ok=True)
    os.chmod(own, 0o755)
    hist = own / "repl_history"
    hist.write_text("+set key = \"sk-inline-SECRET\"\n")
    os.chmod(hist, 0o644)
    private_history_file(hist)
    assert _mode(own) == 0o700 and _mode(hist) == 0o600
    # a history file the user placed elsewhere: the file is made private, their directory left alone
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    os.chmod(mine, 0o755)
    private_history_file(mine / "h")
    assert _mode(mine) == 0o755 and _mode(mine / "h") == 0o600
    private_history_file(tmp_path / "new" / "dir" / "h")
    assert _mode(tmp_path / "new" / "dir") == 0o700 and _mode(tmp_path / "new" / "dir" / "h") == 0o600


@pytestmark_posix
def test_the_interactive_repl_uses_the_private_history(tmp_path: Path) -> None:
    from nslang.repl import Repl

    path = tmp_path / "hist"
    path.write_text("")
    os.chmod(path, 0o666)
    repl = Repl(stdout=io.StringIO(), color=False, history_file=path, sandbox_dir=tmp_path / "box")
    repl._make_session()
    assert _mode(path) == 0o600


def test_cli_perf_redacts_keys_in_records_written_before_redaction(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A performance log from a build that did not redact (the issue's CRLF case): the view still hides
    the keys its definitions resolve to here (environment variable, sandbox key file, inline value)."""
    box = tmp_path / "sandbox"
    m = AIWorkerManager(box, environ={})
    env_id = m.add_definition({"name": "env", "provider": "test", "auth": {"method": "env_var",
                                                                           "value": "NSL_OLD_KEY"}}).definition_id
    (box / "k.key").write_text("sk-file-OLDSECRET-9999\n")
    file_id = m.add_definition({"name": "file", "provider": "test",
                                "auth": {"method": "config_path", "value": "k.key"}}).definition_id
    m.close()
    monkeypatch.setenv("NSL_OLD_KEY", KEY + "\r")
    leaked = [(env_id, f"Illegal header value b'Bearer {KEY}\\r'"), (file_id, "echo sk-file-OLDSECRET-9999")]
    with open(box / "ai_worker_performance_data.json", "w") as f:
        for i, (def_id, text) in enumerate(leaked):
            f.write(json.dumps({
                "entry_kind": "stateless_task", "instance_id": f"stateless-{i}", "definition_id": def_id,
                "final_status": "retired_error", "performance_records": [{
                    "task_id": f"00000000-0000-0000-0000-00000000000{i}", "instance_id": f"stateless-{i}",
                    "definition_id": def_id, "timestamp_start": "2026-01-01T00:00:00Z",
                    "timestamp_end": "2026-01-01T00:00:01Z", "duration_ms": 1, "success": False,
                    "error_details": text}]}) + "\n")
    out, err = io.StringIO(), io.StringIO()
    assert main(["workers", "perf", "--sandbox", str(box)], stdout=out, stderr=err) == 0, err.getvalue()
    text = out.getvalue()
    assert "Illegal header value" in text and "OLDSECRET" not in text and "sk-Attack" not in text, text
