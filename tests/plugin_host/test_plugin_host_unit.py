"""Unit tests of the plugin host, in process: hookspec docs, the register callback's
validation, duplicate providers, provenance, errors that list what is installed, guarded
entry-point loading, worker hooks, strict mode and tracing."""

from __future__ import annotations

import inspect
import logging
import types
from pathlib import Path

import pytest

from livekit.agents import hookimpl, hookspecs
from livekit.agents.exceptions import PluginError, ProviderNotFoundError, ProviderTypeError
from livekit.agents.plugin_host import PluginHost, is_compatible

REPO_ROOT = Path(__file__).resolve().parents[2]


def plugin(name: str, **hooks) -> types.ModuleType:
    """A plugin module object with the given hook implementations."""
    module = types.ModuleType(f"fake_{name}")
    module.PLUGIN_API = (1, 0)
    for hook_name, fn in hooks.items():
        fn.__name__ = hook_name
        setattr(module, hook_name, hookimpl(fn))
    return module


def stt_plugin(name: str, *providers: str, distribution: str | None = None) -> types.ModuleType:
    def register_stt(register):
        for p in providers:
            register(p, lambda p=p, **o: ("stt", p, o), description=f"{p} from {name}")

    return plugin(name, register_stt=register_stt)




GOOD = """
from livekit.agents import hookimpl
PLUGIN_API = (1, 0)

@hookimpl
def register_vad(register):
    register("{name}", lambda **o: "vad-instance", description="a VAD")
"""


# --- hookspecs ---------------------------------------------------------------------------


def test_every_hook_has_a_docstring_and_is_listed():
    specs = {n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, "livekit.agents_spec")}
    assert specs == set(hookspecs.CAPABILITY_HOOKS + hookspecs.WORKER_HOOKS)
    for name in specs:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and len(doc) > 30, f"hookspec {name} needs a docstring that explains it"


def test_every_hook_is_documented_in_docs_plugins():
    text = (REPO_ROOT / "docs" / "plugins.md").read_text()
    for name in hookspecs.CAPABILITY_HOOKS + hookspecs.WORKER_HOOKS:
        args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"### `{name}({args})`" in text, f"docs/plugins.md lacks a heading for {name}({args})"


def test_plugin_api_compatibility_rule():
    assert is_compatible((1, 0), (1, 0))
    assert is_compatible((1, 0), (1, 3))
    assert not is_compatible((1, 4), (1, 3))  # needs a newer core
    assert not is_compatible((2, 0), (1, 3))
    assert not is_compatible((0, 9), (1, 0))


# --- register callback -------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r: r("", lambda: 1), "needs a non-empty name"),
        (lambda r: r(None, lambda: 1), "needs a non-empty name"),
        (lambda r: r("x", "not callable"), "factory of stt provider 'x' is not callable"),
        (lambda r: (r("x", lambda: 1), r("x", lambda: 2)), "stt provider 'x' is registered twice"),
    ],
)
def test_register_callback_validates(call, message):
    host = PluginHost()

    def register_stt(register):
        call(register)

    with pytest.raises((ValueError, TypeError), match=message):
        host.register_plugin("bad", plugin("bad", register_stt=register_stt))
    assert host.records["bad"].status == "failed"
    assert host.registry.providers() == []
    assert host.pm.get_plugin("bad") is None


def test_tokenizer_register_needs_a_known_kind():
    host = PluginHost()

    def register_tokenizers(register):
        register("x", lambda: 1, kind="paragraph")

    with pytest.raises(ValueError, match="kind must be one of 'sentence', 'word', not 'paragraph'"):
        host.register_plugin("tok", plugin("tok", register_tokenizers=register_tokenizers))


def test_duplicate_provider_name_from_another_plugin_is_refused_alone():
    host = PluginHost()
    host.register_plugin("first", stt_plugin("first", "shared", "own"))
    record = host.register_plugin("second", stt_plugin("second", "other", "shared"))
    # only the clashing provider is refused; the rest of the second plugin works
    assert record.status == "loaded"
    assert record.providers == {"stt": ["other"]}
    assert record.warnings == [
        "stt provider 'shared' is not registered: plugin 'first' already registered that name (rename one of them)"
    ]
    assert [(p.name, p.plugin) for p in host.registry.providers("stt")] == [
        ("other", "second"),
        ("own", "first"),
        ("shared", "first"),
    ]


def test_same_name_for_different_capabilities_is_fine():
    host = PluginHost()

    def register_tokenizers(register):
        register("acme", lambda: "s", kind="sentence")
        register("acme", lambda: "w", kind="word")

    host.register_plugin("acme", plugin("acme", register_tokenizers=register_tokenizers))
    assert host.registry.get("sentence_tokenizer", "acme").create() == "s"
    assert host.registry.get("word_tokenizer", "acme").create() == "w"


# --- provenance and lookup ----------------------------------------------------------------


def test_provenance_is_recorded(entry_points):
    entry_points("provA", GOOD.format(name="prov-a"), dist="livekit-plugins-prova", version="2.5.0")
    host = PluginHost(only={"provA"})
    host.load_entry_points()
    provider = host.registry.get("vad", "prov-a")
    assert (provider.plugin, provider.distribution, provider.version) == (
        "provA",
        "livekit-plugins-prova",
        "2.5.0",
    )
    assert provider.description == "a VAD"
    assert provider.create() == "vad-instance"
    record = host.records["provA"]
    assert record.status == "loaded" and record.providers == {"vad": ["prov-a"]}
    assert record.hooks == ["register_vad"]
    assert record.api_version == (1, 0)
    assert record.location and record.location.endswith(".py")


def test_options_reach_the_factory():
    host = PluginHost()
    host.register_plugin("p", stt_plugin("p", "echo"))
    assert host.registry.get("stt", "echo").create(model="m", language="fr") == (
        "stt",
        "echo",
        {"model": "m", "language": "fr"},
    )


def test_provider_not_found_lists_installed_names():
    host = PluginHost()
    host.register_plugin("p", stt_plugin("p", "beta", "alpha"))
    with pytest.raises(ProviderNotFoundError) as err:
        host.registry.get("stt", "gamma")
    assert "no stt provider named 'gamma' is installed (installed: alpha, beta)" in str(err.value)
    assert "agents plugins list" in str(err.value)
    with pytest.raises(
        ProviderNotFoundError, match=r"no vad provider named 'silero' is installed \(installed: none\)"
    ):
        host.registry.get("vad", "silero")


def test_create_uses_the_process_host(monkeypatch):
    from livekit.agents import plugin_host

    host = PluginHost()
    host.register_plugin("p", stt_plugin("p", "echo"))
    monkeypatch.setattr(plugin_host, "_host", host)
    assert host.registry.get("stt", "echo").create(x=1) == ("stt", "echo", {"x": 1})
    with pytest.raises(ProviderTypeError, match=r"the stt provider 'echo' of plugin 'p' \(registered in code\) returned builtins.tuple, not a livekit.agents.stt.STT"):
        plugin_host.create_stt("echo", x=1)
    with pytest.raises(ValueError, match="unknown capability 'chatbot'"):
        plugin_host.create("chatbot", "x")  # type: ignore[arg-type]


# --- guarded loading from entry points ------------------------------------------------------


def test_one_broken_plugin_does_not_stop_the_others(entry_points):
    entry_points("goodone", GOOD.format(name="good-vad"))
    entry_points("noapi", "from livekit.agents import hookimpl\n")
    entry_points("crashes", "raise RuntimeError('boom at import')\n")
    host = PluginHost(only={"goodone", "noapi", "crashes"})
    host.load_entry_points()
    assert host.records["goodone"].status == "loaded"
    assert host.records["noapi"].status == "failed"
    assert "does not declare PLUGIN_API = (major, minor)" in host.records["noapi"].error
    assert host.records["crashes"].error == "RuntimeError: boom at import"
    assert [r.name for r in host.failed()] == ["crashes", "noapi"]
    assert host.registry.get("vad", "good-vad").create() == "vad-instance"


def test_strict_mode_raises_plugin_error(entry_points):
    entry_points("crashes2", "raise RuntimeError('boom')\n")
    host = PluginHost(only={"crashes2"}, strict=True)
    with pytest.raises(PluginError, match="plugin 'crashes2' failed to load: RuntimeError: boom") as err:
        host.load_entry_points()
    assert err.value.plugin == "crashes2"


def test_env_vars_configure_the_host(monkeypatch, entry_points):
    entry_points("envgood", GOOD.format(name="env-vad"))
    entry_points("envblocked", GOOD.format(name="blocked-vad"))
    monkeypatch.setenv("LIVEKIT_AGENTS_PLUGINS", "envgood, envblocked")
    monkeypatch.setenv("LIVEKIT_AGENTS_DISABLE_PLUGINS", "envblocked")
    monkeypatch.setenv("LIVEKIT_AGENTS_STRICT_PLUGINS", "1")
    monkeypatch.setenv("LIVEKIT_AGENTS_TRACE_PLUGINS", "true")
    host = PluginHost.from_env()
    assert (host.only, host.disable, host.strict, host.trace) == (
        {"envgood", "envblocked"},
        {"envblocked"},
        True,
        True,
    )
    host.load_entry_points()
    assert host.records["envgood"].status == "loaded"
    assert host.records["envblocked"].status == "blocked"
    assert all(r.status == "disabled" for n, r in host.records.items() if n not in ("envgood", "envblocked"))
    assert PluginHost.from_env(strict=False).strict is False  # explicit options win


def test_trace_logs_register_calls(entry_points, caplog):
    entry_points("traced", GOOD.format(name="traced-vad"))
    host = PluginHost(only={"traced"}, trace=True)
    with caplog.at_level(logging.INFO, logger="livekit.agents.plugins.trace"):
        host.load_entry_points()
    text = caplog.text
    assert "hook register_vad(register=<register vad providers for plugin traced>) -> plugin traced" in text
    assert "plugin traced registered vad provider 'traced-vad'" in text


# --- worker hooks --------------------------------------------------------------------------


def test_worker_hooks_are_isolated_per_plugin(caplog):
    host = PluginHost()
    seen = []

    def job_offered(job_request):
        seen.append(("ok", job_request))
        return False

    def job_offered_crash(job_request):
        raise RuntimeError("plugin bug")

    host.register_plugin("decliner", plugin("decliner", job_offered=job_offered))
    host.register_plugin("crasher", plugin("crasher", job_offered=job_offered_crash))
    with caplog.at_level(logging.ERROR, logger="livekit.agents"):
        results = host.call("job_offered", job_request="req-1")
    assert results == [False]
    assert seen == [("ok", "req-1")]
    assert "plugin crasher raised in hook job_offered: RuntimeError: plugin bug" in caplog.text
    with pytest.raises(ValueError, match="'register_stt' is not a worker hook"):
        host.call("register_stt", register=None)


def test_worker_hook_errors_are_fatal_in_strict_mode():
    host = PluginHost(strict=True)

    def job_ended(job_context, reason):
        raise RuntimeError("plugin bug")

    host.register_plugin("crasher", plugin("crasher", job_ended=job_ended))
    with pytest.raises(PluginError, match=r"plugin 'crasher' raised in hook job_ended: RuntimeError: plugin bug \(strict mode\)"):
        host.call("job_ended", job_context=None, reason="success")


def test_worker_hooks_go_through_pluggy_wrappers_and_monitoring():
    host = PluginHost()
    seen: list[object] = []

    class Wrapping:
        @hookimpl(wrapper=True)
        def job_offered(self, job_request):
            results = yield
            seen.append(("wrapper saw", list(results)))
            return results

    def job_offered(job_request):
        return False

    host.register_plugin("decliner", plugin("decliner", job_offered=job_offered))
    host.register_plugin("wrapper", Wrapping())
    undo = host.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: seen.append(("before", name)), lambda outcome, name, impls, kwargs: None
    )
    try:
        assert host.call("job_offered", job_request="offer") == [False]
    finally:
        undo()
    assert seen == [("before", "job_offered"), ("wrapper saw", [False])]


def test_a_raising_plugin_does_not_discard_another_plugins_false(caplog):
    host = PluginHost()

    def decline(job_request):
        return False

    def crash(job_request):
        raise RuntimeError("boom")

    host.register_plugin("a-decliner", plugin("a-decliner", job_offered=decline))
    host.register_plugin("b-crasher", plugin("b-crasher", job_offered=crash))
    host.register_plugin("c-crasher", plugin("c-crasher", job_offered=crash))
    with caplog.at_level(logging.ERROR, logger="livekit.agents"):
        assert host.call("job_offered", job_request="offer") == [False]
    assert "plugin b-crasher raised in hook job_offered: RuntimeError: boom" in caplog.text
    assert "plugin c-crasher raised in hook job_offered" in caplog.text


def test_hookimpl_may_take_a_subset_of_arguments():
    host = PluginHost()
    reasons = []

    def job_ended(reason):
        reasons.append(reason)

    host.register_plugin("subset", plugin("subset", job_ended=job_ended))
    host.call("job_ended", job_context=object(), reason="room_disconnected")
    assert reasons == ["room_disconnected"]


def test_duplicate_provider_from_an_installed_plugin_is_refused_alone(entry_points):
    source = """
from livekit.agents import hookimpl
PLUGIN_API = (1, 0)

@hookimpl
def register_vad(register):
{body}
"""
    entry_points("dupa", source.format(body='    register("shared-vad", lambda **o: "a")'))
    entry_points(
        "dupb",
        source.format(
            body='    register("b-own", lambda **o: "b")\n    register("shared-vad", lambda **o: "b")'
        ),
    )
    host = PluginHost(only={"dupa", "dupb"})
    host.load_entry_points()
    assert host.records["dupa"].status == "loaded"
    record = host.records["dupb"]
    assert record.status == "loaded"
    assert record.warnings == ["vad provider 'shared-vad' is not registered: plugin 'dupa' already registered that name (rename one of them)"]
    assert record.providers == {"vad": ["b-own"]}
    assert [(p.name, p.plugin) for p in host.registry.providers("vad") if p.plugin in ("dupa", "dupb")] == [
        ("b-own", "dupb"),
        ("shared-vad", "dupa"),
    ]
    assert host.registry.get("vad", "shared-vad").create() == "a"


def test_docs_capability_table_is_the_capability_table():
    from livekit.agents import capabilities

    text = (REPO_ROOT / "docs" / "plugins.md").read_text()
    assert capabilities.markdown_table() in text, "regenerate the table: capabilities.markdown_table()"


def test_every_capability_has_a_hook_a_base_class_and_a_check():
    from livekit.agents import capabilities

    for cap in capabilities.CAPABILITIES:
        assert cap.hook in hookspecs.CAPABILITY_HOOKS
        assert isinstance(cap.base_class(), type)
        assert inspect.iscoroutinefunction(inspect.unwrap(cap.check_function()))
