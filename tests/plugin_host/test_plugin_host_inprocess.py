"""The plugin host's loading and rollback, in process, through real entry points: each
plugin is a module plus a ``.dist-info`` directory on ``sys.path`` (what pip installs),
found by ``importlib.metadata`` like any installed plugin. The subprocess tests
(test_broken_plugins.py, test_plugin_lifecycle.py) show the same from the CLI; these run
in the test process so that every rule is checked where a mutation tool can see it."""

from __future__ import annotations

import importlib
import logging
import re
import sys
import time
import types

import pytest

from livekit.agents import hookimpl, hookspecs, plugin_host
from livekit.agents.exceptions import PluginError, ProviderNotFoundError, ProviderTypeError
from livekit.agents.plugin_host import PluginHost, PluginRecord, _one_line, _short_repr

GROUP = hookspecs.ENTRY_POINT_GROUP
API = hookspecs.PLUGIN_API




def vad_plugin(provider: str, api: str = "(1, 0)", extra: str = "") -> str:
    return f"""
from livekit.agents import hookimpl
PLUGIN_API = {api}

@hookimpl
def register_vad(register):
    register({provider!r}, lambda **o: ("vad", {provider!r}, o), description="a VAD")
{extra}
"""


HALF = """
from livekit.agents import hookimpl
PLUGIN_API = (1, 0)

@hookimpl
def register_vad(register):
    register("half-vad", lambda **o: "vad")

@hookimpl
def register_stt(register):
    register("half-stt", lambda **o: "stt")

@hookimpl
def register_tts(register):
    raise RuntimeError("tts registration broke")

@hookimpl
def job_offered(job_request):
    return False
"""


def load(*only: str, **kw) -> PluginHost:
    host = PluginHost(only=set(only), **kw)
    host.load_entry_points()
    return host


# --- a plugin that loads ------------------------------------------------------------------


def test_a_loaded_plugin_records_where_it_came_from(install):
    module = install("ipgood", vad_plugin("ip-vad"), dist="acme-ip-good", version="4.5.6")
    host = load("ipgood")
    rec = host.records["ipgood"]
    assert (rec.name, rec.distribution, rec.version) == ("ipgood", "acme-ip-good", "4.5.6")
    assert (rec.entry_point, rec.module, rec.status) == (f"ipgood = {module}", module, "loaded")
    assert rec.api_version == (1, 0) and rec.error is None and rec.warnings == []
    assert rec.hooks == ["register_vad"] and rec.providers == {"vad": ["ip-vad"]}
    assert rec.location == sys.modules[module].__file__
    assert rec.load_seconds > 0
    provider = host.provider("vad", "ip-vad")
    assert (provider.plugin, provider.distribution, provider.version, provider.description) == (
        "ipgood", "acme-ip-good", "4.5.6", "a VAD")
    assert provider.create(threshold=0.5) == ("vad", "ip-vad", {"threshold": 0.5})
    assert rec in host.plugins()
    assert host.failed() == []


def test_the_entry_point_value_may_name_an_object_in_the_module(install, tmp_path):
    tag = abs(hash(str(tmp_path))) % 10**8
    module = f"inproc_ipobj_{tag}"
    install("ipobj", """
from livekit.agents import hookimpl

class Plugin:
    PLUGIN_API = (1, 0)

    @hookimpl
    def register_vad(self, register):
        register("obj-vad", lambda **o: "obj")

plugin = Plugin()
""", module=module, entry=f"ipobj = {module}:plugin")
    host = load("ipobj")
    rec = host.records["ipobj"]
    assert rec.status == "loaded", rec.error
    assert rec.module == module and rec.entry_point == f"ipobj = {module}:plugin"
    assert rec.location is None  # an object, not a module: no file
    assert host.provider("vad", "obj-vad").create() == "obj"


def test_loading_twice_loads_once(install):
    module = install("iponce", vad_plugin("once-vad"))
    host = load("iponce")
    first = sys.modules[module]
    host.load_entry_points()
    assert sys.modules[module] is first
    assert host.records["iponce"].providers == {"vad": ["once-vad"]}
    assert [p.name for p in host.registry.providers("vad")] == ["once-vad"]


def test_a_plugin_declared_twice_uses_the_first_and_warns(install, caplog):
    install("ipdup", vad_plugin("dup-first"), dist="livekit-plugins-ipdup-a")
    install("ipdup", vad_plugin("dup-second"), dist="livekit-plugins-ipdup-b",
            module="inproc_ipdup_second")
    with caplog.at_level(logging.WARNING, "livekit.agents"):
        host = load("ipdup")
    assert "plugin 'ipdup' is declared twice; using the first one" in caplog.text
    assert len(host.registry.providers("vad")) == 1
    assert host.records["ipdup"].status == "loaded"


def test_plugins_are_loaded_in_name_order(install):
    install("ipz", vad_plugin("same-name"))
    install("ipa", vad_plugin("same-name"))
    host = load("ipz", "ipa")
    # the first by name gets the provider; the other gets a warning, not a failure
    assert host.provider("vad", "same-name").plugin == "ipa"
    assert host.records["ipz"].status == "loaded"
    assert host.records["ipz"].warnings == [
        "vad provider 'same-name' is not registered: plugin 'ipa' already registered that name (rename one of them)"]
    assert [r.name for r in host.plugins() if r.name in ("ipa", "ipz")] == ["ipa", "ipz"]


# --- left out: blocked and disabled ---------------------------------------------------------


def test_a_blocked_plugin_is_never_imported(install):
    module = install("ipblocked", vad_plugin("blocked-vad"))
    host = PluginHost(only={"ipblocked"}, disable={"ipblocked"})
    host.load_entry_points()
    rec = host.records["ipblocked"]
    assert rec.status == "blocked" and module not in sys.modules
    assert host.pm.is_blocked("ipblocked")
    assert rec.load_seconds == 0.0 and rec.providers == {}
    with pytest.raises(ProviderNotFoundError, match=r"plugin 'ipblocked' is blocked \(--disable-plugin / LIVEKIT_AGENTS_DISABLE_PLUGINS\)"):
        host.provider("vad", "ipblocked")


def test_a_plugin_left_out_by_only_is_disabled_and_not_imported(install):
    module = install("ipleftout", vad_plugin("left-vad"))
    host = load("ipother")
    rec = host.records["ipleftout"]
    assert rec.status == "disabled" and module not in sys.modules
    assert not host.pm.is_blocked("ipleftout")
    with pytest.raises(ProviderNotFoundError, match="plugin 'ipleftout' is left out by --plugins / LIVEKIT_AGENTS_PLUGINS"):
        host.provider("vad", "ipleftout")


def test_without_only_every_plugin_is_loaded(install, monkeypatch):
    install("ipall", vad_plugin("all-vad"))
    host = PluginHost(disable={n.name for n in importlib.metadata.entry_points(group=GROUP)} - {"ipall"})
    host.load_entry_points()
    assert host.records["ipall"].status == "loaded"
    assert host.only is None


# --- failures and rollback ------------------------------------------------------------------


def test_a_plugin_that_fails_half_way_is_rolled_back(install, caplog):
    install("iphalf", HALF)
    with caplog.at_level(logging.WARNING, "livekit.agents"):
        host = load("iphalf")
    rec = host.records["iphalf"]
    assert rec.status == "failed"
    assert rec.error == "RuntimeError: tts registration broke"
    assert rec.providers == {}
    # nothing it registered before the failure is left: no provider, no hook, no plugin
    assert host.registry.providers() == []
    assert host.pm.get_plugin("iphalf") is None
    assert host.call("job_offered", job_request="offer") == []
    assert host.failed() == [rec]
    assert "plugin iphalf failed to load: RuntimeError: tts registration broke" in caplog.text
    with pytest.raises(ProviderNotFoundError, match="plugin 'iphalf' is installed but failed to load: RuntimeError: tts registration broke"):
        host.provider("vad", "iphalf")


def test_a_failed_plugin_leaves_the_others_registered(install):
    install("ipfine", vad_plugin("fine-vad"))
    install("iphalf2", HALF)
    host = load("ipfine", "iphalf2")
    assert [p.name for p in host.registry.providers()] == ["fine-vad"]
    assert host.records["ipfine"].status == "loaded"


def test_strict_mode_raises_and_still_rolls_back(install):
    install("iphalf3", HALF)
    host = PluginHost(only={"iphalf3"}, strict=True)
    with pytest.raises(PluginError, match="plugin 'iphalf3' failed to load: RuntimeError: tts registration broke") as err:
        host.load_entry_points()
    assert err.value.plugin == "iphalf3"
    assert isinstance(err.value.__cause__, RuntimeError)
    assert host.registry.providers() == [] and host.pm.get_plugin("iphalf3") is None
    assert host.records["iphalf3"].status == "failed"


def test_an_import_error_fails_the_plugin_with_a_one_line_reason(install):
    install("ipimport", "import no_such_sdk_for_inproc_tests\n")
    host = load("ipimport")
    rec = host.records["ipimport"]
    assert rec.status == "failed"
    assert rec.error == "ModuleNotFoundError: No module named 'no_such_sdk_for_inproc_tests'"
    assert rec.api_version is None and rec.location is None


def test_a_missing_module_fails_the_plugin(install):
    install("ipgone", "", module="inproc_module_that_is_not_there")
    rec = load("ipgone").records["ipgone"]
    assert rec.status == "failed" and "inproc_module_that_is_not_there" in rec.error


@pytest.mark.parametrize(
    ("api", "message"),
    [
        ("'1.0'", "PLUGIN_API in {m} has the wrong type: '1.0' (str); it must be a tuple of two ints, (major, minor); write PLUGIN_API = (1, 0)"),
        ("1.0", "PLUGIN_API in {m} has the wrong type: 1.0 (float); it must be a tuple of two ints, (major, minor); write PLUGIN_API = (1, 0)"),
        ("'1.x'", "PLUGIN_API in {m} has the wrong type: '1.x' (str); it must be a tuple of two ints, (major, minor)"),
        ("'1.0.2'", "PLUGIN_API in {m} has the wrong type: '1.0.2' (str); it must be a tuple of two ints, (major, minor)"),
        ("[1, 0]", "PLUGIN_API in {m} has the wrong type: [1, 0] (list); it must be a tuple of two ints, (major, minor)"),
        ("(1,)", "PLUGIN_API in {m} has the wrong type: (1,) (tuple); it must be a tuple of two ints, (major, minor)"),
        ("(1, 0, 0)", "PLUGIN_API in {m} has the wrong type: (1, 0, 0) (tuple); it must be a tuple of two ints, (major, minor)"),
        ("(1, True)", "PLUGIN_API in {m} has the wrong type: (1, True) (tuple); it must be a tuple of two ints, (major, minor)"),
        ("(1, 0.0)", "PLUGIN_API in {m} has the wrong type: (1, 0.0) (tuple); it must be a tuple of two ints, (major, minor)"),
    ],
)
def test_a_plugin_api_of_the_wrong_type_fails_with_a_fix(install, api, message):
    name = f"ipapi{abs(hash(api)) % 10**6}"
    module = install(name, vad_plugin("api-vad", api=api))
    rec = load(name).records[name]
    assert rec.status == "failed"
    assert rec.error == message.format(m=module)
    assert rec.api_version is None


def test_a_plugin_without_plugin_api_fails(install):
    module = install("ipnoapi", "X = 1\n")
    rec = load("ipnoapi").records["ipnoapi"]
    assert rec.status == "failed"
    assert rec.error == f"the plugin module {module} does not declare PLUGIN_API = (major, minor)"


@pytest.mark.parametrize("api", [f"({API[0] + 1}, 0)", f"({API[0]}, {API[1] + 1})", f"({API[0] - 1}, 9)"])
def test_an_incompatible_plugin_is_skipped_with_what_to_install(install, caplog, api):
    name = f"ipincompat{abs(hash(api)) % 10**6}"
    install(name, vad_plugin("new-vad", api=api), dist="livekit-plugins-future")
    with caplog.at_level(logging.WARNING, "livekit.agents"):
        host = load(name)
    rec = host.records[name]
    major, minor = eval(api)  # noqa: S307  (the literal written above)
    assert rec.status == "incompatible" and rec.api_version == (major, minor)
    assert rec.error == (
        f"built for plugin API {major}.{minor}, this livekit-agents {plugin_host._core_version()} provides "
        f"{API[0]}.{API[1]}; install a version of livekit-plugins-future made for it")
    assert rec.providers == {} and host.registry.providers() == [] and host.pm.get_plugin(name) is None
    assert f"plugin {name} skipped: {rec.error}" in caplog.text
    assert host.failed() == [rec]
    with pytest.raises(ProviderNotFoundError, match=f"plugin '{name}' is installed but incompatible: built for plugin API"):
        host.provider("vad", name)


def test_an_older_minor_api_is_compatible(install):
    install("ipolder", vad_plugin("older-vad", api=f"({API[0]}, 0)"))
    assert load("ipolder").records["ipolder"].status == "loaded"
    install("ipsame", vad_plugin("same-vad", api=repr(API)))
    assert load("ipsame").records["ipsame"].status == "loaded"


def test_an_incompatible_plugin_is_fatal_in_strict_mode(install):
    install("ipstrictnew", vad_plugin("x-vad", api="(99, 0)"))
    host = PluginHost(only={"ipstrictnew"}, strict=True)
    with pytest.raises(PluginError, match=r"plugin 'ipstrictnew' is incompatible: built for plugin API 99.0") as err:
        host.load_entry_points()
    assert err.value.plugin == "ipstrictnew"
    assert host.records["ipstrictnew"].status == "incompatible"


def test_an_unknown_hook_fails_the_plugin_unless_optional(install):
    install("iptypo", vad_plugin("typo-vad", extra="@hookimpl\ndef regster_stt(register):\n    pass\n"))
    rec = load("iptypo").records["iptypo"]
    assert rec.status == "failed"
    assert rec.error.startswith(f"unknown hook 'regster_stt' (livekit-agents {plugin_host._core_version()} defines: register_")
    assert rec.error.endswith("); fix the name or mark it @hookimpl(optionalhook=True)")
    assert ", ".join(hookspecs.CAPABILITY_HOOKS + hookspecs.WORKER_HOOKS) in rec.error
    install("ipoptional", vad_plugin("opt-vad", extra="@hookimpl(optionalhook=True)\ndef future_hook(x):\n    pass\n"))
    host = load("ipoptional")
    assert host.records["ipoptional"].status == "loaded"
    assert host.provider("vad", "opt-vad")


def test_an_unknown_hook_of_another_plugin_does_not_fail_this_one():
    host = PluginHost()
    host.register_plugin("lenient", types.SimpleNamespace(
        PLUGIN_API=(1, 0), future_hook=hookimpl(optionalhook=True)(lambda x: None)))
    good = types.ModuleType("good")
    good.PLUGIN_API = (1, 0)
    assert host.register_plugin("good", good).status == "loaded"


@pytest.mark.parametrize("kind", ["async def", "async gen"])
def test_an_async_hook_fails_the_plugin(install, kind):
    body = ("async def job_offered(job_request):\n    return False\n" if kind == "async def"
            else "async def job_offered(job_request):\n    yield False\n")
    name = "ipasync" if kind == "async def" else "ipasyncgen"
    install(name, vad_plugin("async-vad", extra="@hookimpl\n" + body))
    host = load(name)
    rec = host.records[name]
    assert rec.status == "failed"
    assert rec.error == ("hook 'job_offered' is an async def; pluggy never awaits it, so its body would not run. "
                         "Make it a plain def (do async work in the objects it creates)")
    assert host.registry.providers() == []


def test_an_async_hook_error_names_the_plugin_and_hook():
    host = PluginHost()
    mod = types.ModuleType("asyncy")
    mod.PLUGIN_API = (1, 0)

    async def job_started(job_context):
        pass

    mod.job_started = hookimpl(job_started)
    with pytest.raises(PluginError) as err:
        host.register_plugin("asyncy", mod)
    assert (err.value.plugin, err.value.hook) == ("asyncy", "job_started")


# --- tracing ------------------------------------------------------------------------------


def test_trace_logs_each_step_of_loading(install, caplog):
    module = install("iptraced", vad_plugin("traced-vad"), dist="livekit-plugins-iptraced", version="0.9")
    install("iptblocked", vad_plugin("tb-vad"))
    install("iptfails", "raise RuntimeError('nope')\n")
    with caplog.at_level(logging.INFO, "livekit.agents.plugins.trace"):
        host = PluginHost(only={"iptraced", "iptblocked", "iptfails"}, disable={"iptblocked"}, trace=True)
        host.load_entry_points()
    msgs = [r.getMessage() for r in caplog.records if r.name == "livekit.agents.plugins.trace"]
    assert f"loading plugin iptraced from {module} (livekit-plugins-iptraced 0.9)" in msgs
    assert "plugin iptblocked blocked (not loaded)" in msgs
    assert any(m.startswith("plugin iptraced loaded in ") and m.endswith(" ms") for m in msgs)
    assert any(m.startswith("plugin iptfails failed in ") and m.endswith(" ms: RuntimeError: nope") for m in msgs)
    assert "plugin iptraced registered vad provider 'traced-vad'" in msgs
    assert any(m.startswith("plugin ipleft") for m in msgs) is False
    disabled = [m for m in msgs if m.endswith("disabled (not among the chosen plugins)")]
    assert disabled and all(m.startswith("plugin ") for m in disabled)


def test_without_trace_nothing_is_logged_to_the_trace_logger(install, caplog):
    install("ipquiet", vad_plugin("quiet-vad"))
    with caplog.at_level(logging.DEBUG, "livekit.agents.plugins.trace"):
        load("ipquiet")
    assert [r for r in caplog.records if r.name == "livekit.agents.plugins.trace"] == []


def test_traced_worker_hooks_log_calls_results_and_errors(caplog):
    host = PluginHost(trace=True)
    mod = types.ModuleType("tw")
    mod.PLUGIN_API = (1, 0)
    mod.job_offered = hookimpl(lambda job_request: False)
    mod.job_offered.__name__ = "job_offered"
    bad = types.ModuleType("twbad")
    bad.PLUGIN_API = (1, 0)

    def job_offered(job_request):
        raise ValueError("bad offer")

    bad.job_offered = hookimpl(job_offered)
    host.register_plugin("tw", mod)
    host.register_plugin("twbad", bad)
    with caplog.at_level(logging.INFO, "livekit.agents"):
        assert host.call("job_offered", job_request="x" * 200) == [False]
    msgs = [r.getMessage() for r in caplog.records if r.name == "livekit.agents.plugins.trace"]
    shown = "'" + "x" * 76 + "..."
    assert f"hook job_offered(job_request={shown}) -> plugin tw" in msgs
    assert any(m.startswith("hook job_offered <- plugin tw returned False in ") and m.endswith(" ms") for m in msgs)
    assert "hook job_offered <- plugin twbad raised ValueError: bad offer" in msgs
    errors = [r for r in caplog.records if r.name == "livekit.agents" and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["plugin twbad raised in hook job_offered: ValueError: bad offer"]
    assert (errors[0].plugin, errors[0].hook) == ("twbad", "job_offered")


def test_traced_strict_worker_hook_errors_raise():
    host = PluginHost(trace=True, strict=True)
    mod = types.ModuleType("tws")
    mod.PLUGIN_API = (1, 0)

    def job_ended(job_context, reason):
        raise ValueError("bad end")

    mod.job_ended = hookimpl(job_ended)
    host.register_plugin("tws", mod)
    with pytest.raises(PluginError, match=r"plugin 'tws' raised in hook job_ended: ValueError: bad end \(strict mode\)") as err:
        host.call("job_ended", job_context=None, reason="x")
    assert (err.value.plugin, err.value.hook) == ("tws", "job_ended")


def test_a_registration_error_under_trace_is_logged_and_rolls_back(install, caplog):
    install("iptracedhalf", HALF)
    with caplog.at_level(logging.INFO, "livekit.agents.plugins.trace"):
        host = load("iptracedhalf", trace=True)
    msgs = [r.getMessage() for r in caplog.records if r.name == "livekit.agents.plugins.trace"]
    assert "hook register_tts <- plugin iptracedhalf raised RuntimeError: tts registration broke" in msgs
    assert host.records["iptracedhalf"].status == "failed"
    assert host.registry.providers() == []


def test_the_guarded_function_keeps_a_reference_to_the_plugins_own():
    host = PluginHost()
    mod = types.ModuleType("wrapped")
    mod.PLUGIN_API = (1, 0)

    def job_started(job_context):
        return None

    mod.job_started = hookimpl(job_started)
    host.register_plugin("wrapped", mod)
    [impl] = host.pm.hook.job_started.get_hookimpls()
    assert impl.function.__wrapped__ is job_started


# --- the process host and small helpers -------------------------------------------------------


def test_the_process_host_is_created_once_from_the_environment(install, monkeypatch):
    install("ipproc", vad_plugin("proc-vad"))
    monkeypatch.setenv("LIVEKIT_AGENTS_PLUGINS", "ipproc")
    monkeypatch.setattr(plugin_host, "_host", None)
    host = plugin_host.get_plugin_host()
    assert plugin_host.get_plugin_host() is host
    assert host.only == {"ipproc"} and host.records["ipproc"].status == "loaded"
    assert host.provider("vad", "proc-vad").create() == ("vad", "proc-vad", {})
    other = PluginHost()
    plugin_host.set_plugin_host(other)
    assert plugin_host.get_plugin_host() is other
    plugin_host.set_plugin_host(None)
    monkeypatch.setenv("LIVEKIT_AGENTS_PLUGINS", "")
    assert plugin_host.get_plugin_host().only == set()


@pytest.mark.parametrize(("raw", "expected"), [(None, None), ("", set()), (" a, ,b ,a", {"a", "b"})])
def test_plugin_names_from_the_environment(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv("LIVEKIT_AGENTS_PLUGINS", raising=False)
    else:
        monkeypatch.setenv("LIVEKIT_AGENTS_PLUGINS", raw)
    assert PluginHost.from_env().only == expected


@pytest.mark.parametrize(("raw", "expected"), [("1", True), (" TRUE ", True), ("yes", True), ("on", True),
                                                ("0", False), ("", False), ("no", False), ("2", False)])
def test_flags_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("LIVEKIT_AGENTS_STRICT_PLUGINS", raw)
    monkeypatch.setenv("LIVEKIT_AGENTS_TRACE_PLUGINS", raw)
    monkeypatch.delenv("LIVEKIT_AGENTS_DISABLE_PLUGINS", raising=False)
    host = PluginHost.from_env()
    assert (host.strict, host.trace, host.disable) == (expected, expected, set())


def test_one_line_errors():
    assert _one_line(RuntimeError("a\n\n  b  \nc")) == "RuntimeError: a; b; c"
    assert _one_line(RuntimeError()) == "RuntimeError"
    assert _one_line(ValueError("x" * 500)) == "ValueError: " + "x" * 385 + "..."
    assert len(_one_line(ValueError("x" * 500))) == 400
    assert _one_line(ValueError("x" * 388)) == "ValueError: " + "x" * 388  # exactly 400: kept
    assert _one_line(ValueError("abc"), limit=8) == "Value..."


def test_short_repr():
    assert _short_repr("ab") == "'ab'"
    assert _short_repr("x" * 78) == "'" + "x" * 78 + "'"  # 80 characters: kept
    assert _short_repr("x" * 79) == "'" + "x" * 76 + "..."
    assert _short_repr(types.SimpleNamespace(_trace_repr="<custom>")) == "<custom>"
    assert _short_repr("abcdef", limit=5) == "'a..."


def test_a_record_as_json():
    rec = PluginRecord(name="p", distribution="d", version="1", entry_point="p = m", module="m", status="loaded",
                       api_version=(1, 0), error=None, hooks=["register_vad"], providers={"vad": ["v"]},
                       location="/x.py", warnings=["w"])
    assert rec.to_json() == {
        "name": "p", "distribution": "d", "version": "1", "entry_point": "p = m", "module": "m",
        "api_version": [1, 0], "status": "loaded", "error": None, "hooks": ["register_vad"],
        "providers": {"vad": ["v"]}, "location": "/x.py", "warnings": ["w"],
    }
    assert PluginRecord("p", None, None, "e", "m", "failed").to_json()["api_version"] is None


def test_a_plugin_registered_in_code_has_a_record():
    host = PluginHost()
    mod = types.ModuleType("incode")
    rec = host.register_plugin("incode", mod, distribution="some-dist")
    assert (rec.name, rec.distribution, rec.version, rec.entry_point, rec.module, rec.status) == (
        "incode", "some-dist", None, "(registered in code)", "incode", "loaded")
    assert rec.api_version == hookspecs.PLUGIN_API  # a module without PLUGIN_API gets the core's
    obj = types.SimpleNamespace(PLUGIN_API=(1, 0))
    rec2 = host.register_plugin("obj", obj)
    assert rec2.module == repr(obj) and rec2.api_version == (1, 0)
    assert host.records == {"incode": rec, "obj": rec2}


def test_create_checks_the_type_and_names_each_capability(monkeypatch):
    from livekit.agents import stt, tokenize

    class S(stt.STT):
        def __init__(self):
            super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))

        async def recognize(self, buffer, *, language=None):
            raise NotImplementedError

    class Sentences(tokenize.SentenceTokenizer):
        def tokenize(self, text, *, language=None):
            return [text]

        def stream(self, *, language=None):
            raise NotImplementedError

    host = PluginHost()

    def register_stt(register):
        register("s", lambda **o: S())

    def register_tokenizers(register):
        register("tk", lambda **o: Sentences(), kind="sentence")
        register("tk", lambda **o: Sentences(), kind="word")  # the wrong type for a word tokenizer

    mod = types.ModuleType("cr")
    mod.PLUGIN_API = (1, 0)
    mod.register_stt = hookimpl(register_stt)
    mod.register_tokenizers = hookimpl(register_tokenizers)
    host.register_plugin("cr", mod)
    monkeypatch.setattr(plugin_host, "_host", host)
    assert isinstance(plugin_host.create_stt("s"), S)
    assert isinstance(plugin_host.create_tokenizer("tk"), Sentences)
    with pytest.raises(ProviderTypeError, match=r"the word_tokenizer provider 'tk' of plugin 'cr' \(registered in code\) returned .*Sentences, not a livekit.agents.tokenize"):
        plugin_host.create_tokenizer("tk", kind="word")
    with pytest.raises(ValueError, match="tokenizer kind must be 'sentence' or 'word', not 'para'"):
        plugin_host.create_tokenizer("tk", kind="para")  # type: ignore[call-overload]
    for fn, cap in ((plugin_host.create_tts, "tts"), (plugin_host.create_vad, "vad"), (plugin_host.create_llm, "llm")):
        with pytest.raises(ProviderNotFoundError, match=f"no {cap} provider named 'nothing' is installed"):
            fn("nothing")


# --- what the mutation run found unchecked ------------------------------------------------------


def made(base: type, options: dict) -> object:
    """An instance of a subclass of ``base`` (its abstract methods stubbed) holding ``options``."""
    cls = type(f"Made{base.__name__}", (base,), {m: (lambda self, *a, **k: None) for m in base.__abstractmethods__})
    obj = object.__new__(cls)
    obj.options = options
    return obj


def test_every_create_function_passes_the_options_to_the_factory(monkeypatch):
    from livekit.agents import llm, stt, tokenize, tts, vad

    host = PluginHost()
    mod = types.ModuleType("allcaps")
    mod.PLUGIN_API = (1, 0)
    for hook, base in (("register_stt", stt.STT), ("register_tts", tts.TTS), ("register_vad", vad.VAD),
                       ("register_llm", llm.LLM)):
        def impl(register, base=base):
            register("all", lambda **o: made(base, o))
        impl.__name__ = hook
        setattr(mod, hook, hookimpl(impl))

    def register_tokenizers(register):
        register("all", lambda **o: made(tokenize.SentenceTokenizer, o), kind="sentence")
        register("all", lambda **o: made(tokenize.WordTokenizer, o), kind="word")

    mod.register_tokenizers = hookimpl(register_tokenizers)
    host.register_plugin("allcaps", mod)
    monkeypatch.setattr(plugin_host, "_host", host)
    for fn, base in ((plugin_host.create_stt, stt.STT), (plugin_host.create_tts, tts.TTS),
                     (plugin_host.create_vad, vad.VAD), (plugin_host.create_llm, llm.LLM)):
        obj = fn("all", model="m1", speed=2)
        assert isinstance(obj, base) and obj.options == {"model": "m1", "speed": 2}
    s = plugin_host.create_tokenizer("all", language="fr")
    w = plugin_host.create_tokenizer("all", kind="word", language="de")
    assert isinstance(s, tokenize.SentenceTokenizer) and s.options == {"language": "fr"}
    assert isinstance(w, tokenize.WordTokenizer) and w.options == {"language": "de"}
    assert plugin_host.create("vad", "all", threshold=0.3).options == {"threshold": 0.3}


def test_the_wrong_type_names_the_module_of_what_was_returned(monkeypatch):
    class Wrong:
        pass

    host = PluginHost()
    host.register_plugin("wt", types.SimpleNamespace(
        PLUGIN_API=(1, 0), register_vad=hookimpl(lambda register: register("wrong", lambda **o: Wrong()))))
    monkeypatch.setattr(plugin_host, "_host", host)
    with pytest.raises(ProviderTypeError) as err:
        plugin_host.create_vad("wrong")
    assert f"returned {Wrong.__module__}.{Wrong.__qualname__}, not a livekit.agents.vad.VAD; " in str(err.value)


def test_the_first_plugin_of_a_name_on_sys_path_wins(tmp_path, monkeypatch, caplog):
    """Two distributions declare the same plugin name: the one found first (first on
    sys.path, like an import) is used, whatever its module is called."""
    created = []
    for i, (site, module) in enumerate(((tmp_path / "a", "zz_inproc_first"), (tmp_path / "b", "aa_inproc_second"))):
        site.mkdir()
        (site / f"{module}.py").write_text(vad_plugin(f"winner-{i}"))
        info = site / f"livekit_plugins_ipwin{i}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: livekit-plugins-ipwin{i}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[{GROUP}]\nipwin = {module}\n")
        created.append(module)
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    monkeypatch.syspath_prepend(str(tmp_path / "a"))  # a before b
    importlib.invalidate_caches()
    try:
        with caplog.at_level(logging.WARNING, "livekit.agents"):
            host = load("ipwin")
        assert host.records["ipwin"].distribution == "livekit-plugins-ipwin0"
        assert [p.name for p in host.registry.providers("vad")] == ["winner-0"]
        assert [r.getMessage() for r in caplog.records if "declared twice" in r.getMessage()] == [
            "plugin 'ipwin' is declared twice; using the first one"]
    finally:
        for module in created:
            sys.modules.pop(module, None)


def test_plugins_after_a_duplicate_still_load(install):
    install("ipdupx", vad_plugin("dupx-1"), dist="livekit-plugins-ipdupx-a")
    install("ipdupx", vad_plugin("dupx-2"), dist="livekit-plugins-ipdupx-b", module="inproc_ipdupx_second")
    install("ipdupy", vad_plugin("dupy"))
    host = load("ipdupx", "ipdupy")
    assert host.records["ipdupy"].status == "loaded"
    assert host.provider("vad", "dupy")


def test_an_entry_point_without_a_distribution_has_no_provenance(install):
    module = install("ipnodist", vad_plugin("nodist-vad"))
    host = PluginHost()
    host._load(importlib.metadata.EntryPoint("ipnodist", module, GROUP))
    rec = host.records["ipnodist"]
    assert (rec.status, rec.distribution, rec.version) == ("loaded", None, None)
    assert host.provider("vad", "nodist-vad").distribution is None


def test_load_time_is_measured_around_the_import(install):
    install("iptimed", vad_plugin("timed-vad"))
    t0 = time.perf_counter()
    host = load("iptimed")
    elapsed = time.perf_counter() - t0
    assert 0 < host.records["iptimed"].load_seconds <= elapsed


def test_exact_log_messages_of_loading(install, caplog):
    install("iplogfail", "raise RuntimeError('nope')\n")
    install("iplognew", vad_plugin("x-vad", api="(99, 0)"), dist="livekit-plugins-lognew")
    install("iplogclash1", vad_plugin("clash-vad"))
    install("iplogclash2", vad_plugin("clash-vad"))
    with caplog.at_level(logging.WARNING, "livekit.agents"):
        host = load("iplogfail", "iplognew", "iplogclash1", "iplogclash2")
    msgs = [r.getMessage() for r in caplog.records if r.name == "livekit.agents"]
    assert "plugin iplogfail failed to load: RuntimeError: nope" in msgs
    assert f"plugin iplognew skipped: {host.records['iplognew'].error}" in msgs
    assert ("plugin iplogclash2: vad provider 'clash-vad' is not registered: plugin 'iplogclash1' already "
            "registered that name (rename one of them)") in msgs


def test_a_clash_refuses_only_that_provider_and_keeps_registering_the_rest():
    host = PluginHost()
    host.register_plugin("first", types.SimpleNamespace(
        PLUGIN_API=(1, 0), register_vad=hookimpl(lambda register: register("shared", lambda **o: 1))))

    def register_vad(register):
        register("shared", lambda **o: 2)  # the clash comes first
        register("zz-own", lambda **o: 3)

    rec = host.register_plugin("second", types.SimpleNamespace(PLUGIN_API=(1, 0), register_vad=hookimpl(register_vad)))
    assert rec.providers == {"vad": ["zz-own"]}
    assert host.provider("vad", "zz-own").create() == 3


def test_plugin_errors_name_the_plugin_and_the_hook(install):
    from livekit.agents.plugin_host import _plugin_api

    with pytest.raises(PluginError) as err:
        _plugin_api(types.SimpleNamespace(), "mod", "plug")
    assert (err.value.plugin, err.value.hook) == ("plug", None)
    with pytest.raises(PluginError) as err:
        _plugin_api(types.SimpleNamespace(PLUGIN_API="1.0"), "mod", "plug2")
    assert err.value.plugin == "plug2"
    install("ipstrictnoapi", "X = 1\n")
    with pytest.raises(PluginError) as err:
        PluginHost(only={"ipstrictnoapi"}, strict=True).load_entry_points()
    assert isinstance(err.value.__cause__, PluginError) and err.value.__cause__.plugin == "ipstrictnoapi"
    host = PluginHost()
    with pytest.raises(PluginError, match="unknown hook 'regster_vad'") as err:
        host.register_plugin("typo", types.SimpleNamespace(PLUGIN_API=(1, 0), regster_vad=hookimpl(lambda register: None)))
    assert (err.value.plugin, err.value.hook) == ("typo", "regster_vad")


def test_a_plugin_failing_its_checks_after_pluggy_registered_it_is_unregistered(install, caplog):
    install("ipasynclate", vad_plugin("late-vad", extra="@hookimpl\nasync def job_started(job_context):\n    pass\n"))
    with caplog.at_level(logging.WARNING, "livekit.agents"):
        host = load("ipasynclate")
    assert host.records["ipasynclate"].status == "failed"
    assert host.pm.get_plugin("ipasynclate") is None and host.pm.hook.job_started.get_hookimpls() == []
    assert any(r.getMessage().startswith("plugin ipasynclate failed to load: hook 'job_started' is an async def")
               for r in caplog.records)


def test_a_failed_register_plugin_records_the_error():
    host = PluginHost()

    def register_stt(register):
        register("", lambda: 1)

    with pytest.raises(ValueError):
        host.register_plugin("bad", types.SimpleNamespace(PLUGIN_API=(1, 0), register_stt=hookimpl(register_stt)))
    assert host.records["bad"].error == "ValueError: a stt provider needs a non-empty name, got ''"


def test_descriptions_default_to_empty_and_pass_through_for_tokenizers():
    host = PluginHost()

    def register_vad(register):
        register("plain", lambda **o: 1)

    def register_tokenizers(register):
        register("tok", lambda **o: 1, kind="sentence", description="splits sentences")
        register("tok", lambda **o: 1, kind="word")

    host.register_plugin("d", types.SimpleNamespace(PLUGIN_API=(1, 0), register_vad=hookimpl(register_vad),
                                                    register_tokenizers=hookimpl(register_tokenizers)))
    assert host.provider("vad", "plain").description == ""
    assert host.provider("sentence_tokenizer", "tok").description == "splits sentences"
    assert host.provider("word_tokenizer", "tok").description == ""


def test_trace_of_capability_hooks_names_the_callback_and_the_result(caplog):
    host = PluginHost(trace=True)

    def register_tokenizers(register):
        register("tok", lambda **o: 1, kind="sentence")

    t0 = time.perf_counter()
    with caplog.at_level(logging.INFO, "livekit.agents.plugins.trace"):
        host.register_plugin("tr", types.SimpleNamespace(PLUGIN_API=(1, 0), register_tokenizers=hookimpl(register_tokenizers)))
    elapsed_ms = 1000 * (time.perf_counter() - t0)
    msgs = [r.getMessage() for r in caplog.records if r.name == "livekit.agents.plugins.trace"]
    assert msgs[0] == ("hook register_tokenizers(register=<register sentence_tokenizer/word_tokenizer providers "
                       "for plugin tr>) -> plugin tr")
    m = re.fullmatch(r"hook register_tokenizers <- plugin tr returned None in ([0-9.]+) ms", msgs[1])
    assert m and float(m.group(1)) <= elapsed_ms + 0.01
    assert msgs[2] == "plugin tr registered sentence_tokenizer provider 'tok'"


def test_trace_of_loading_gives_the_measured_time(install, caplog):
    install("iptracetime", vad_plugin("tt-vad"))
    install("iptraceleft", vad_plugin("tl-vad"))
    with caplog.at_level(logging.INFO, "livekit.agents.plugins.trace"):
        host = load("iptracetime", trace=True)
    msgs = [r.getMessage() for r in caplog.records if r.name == "livekit.agents.plugins.trace"]
    rec = host.records["iptracetime"]
    assert f"plugin iptracetime loaded in {1000 * rec.load_seconds:.1f} ms" in msgs
    assert "plugin iptraceleft disabled (not among the chosen plugins)" in msgs


def test_a_worker_hook_after_a_capability_hook_is_guarded(caplog):
    host = PluginHost()

    def worker_draining(worker):
        raise RuntimeError("drain hook bug")

    host.register_plugin("wd", types.SimpleNamespace(
        PLUGIN_API=(1, 0), register_vad=hookimpl(lambda register: None), worker_draining=hookimpl(worker_draining)))
    with caplog.at_level(logging.ERROR, "livekit.agents"):
        assert host.call("worker_draining", worker=None) == []
    assert "plugin wd raised in hook worker_draining: RuntimeError: drain hook bug" in caplog.text


def test_traced_calls_show_every_argument_once_per_plugin(caplog):
    host = PluginHost(trace=True)
    for name in ("ta", "tb"):
        host.register_plugin(name, types.SimpleNamespace(PLUGIN_API=(1, 0), job_ended=hookimpl(lambda job_context, reason: None)))

    class Wrapping:
        @hookimpl(wrapper=True)
        def job_ended(self, job_context, reason):
            return (yield)

    host.register_plugin("tw", Wrapping())
    t0 = time.perf_counter()
    with caplog.at_level(logging.INFO, "livekit.agents.plugins.trace"):
        host.call("job_ended", job_context="ctx", reason="done")
    elapsed_ms = 1000 * (time.perf_counter() - t0)
    msgs = [r.getMessage() for r in caplog.records if r.name == "livekit.agents.plugins.trace"]
    calls = [m for m in msgs if " -> plugin " in m]
    # one line per plain impl (a second registration does not guard the others twice);
    # a wrapper is not guarded, so not traced
    assert sorted(calls) == ["hook job_ended(job_context='ctx', reason='done') -> plugin ta",
                             "hook job_ended(job_context='ctx', reason='done') -> plugin tb"]
    times = [float(m.group(1)) for m in (re.fullmatch(r"hook job_ended <- plugin t[ab] returned None in ([0-9.]+) ms", x) for x in msgs) if m]
    assert len(times) == 2 and all(t <= elapsed_ms + 0.01 for t in times)


def test_a_loaded_plugin_without_the_provider_asked_for_is_not_installed(install):
    install("iphasother", vad_plugin("other-vad"))
    host = load("iphasother")
    with pytest.raises(ProviderNotFoundError, match=r"no vad provider named 'iphasother' is installed \(installed: other-vad\)"):
        host.provider("vad", "iphasother")


def test_one_line_keeps_a_message_ending_in_x():
    assert _one_line(ValueError("MAX")) == "ValueError: MAX"


def test_a_second_plugin_under_a_taken_name_is_refused_and_the_first_stays():
    host = PluginHost()

    class First:
        PLUGIN_API = (1, 0)

        @hookimpl
        def register_vad(self, register):
            register("first-vad", lambda **_: None)

    host.register_plugin("same", First())
    with pytest.raises(PluginError, match="a plugin named 'same' is registered already"):
        host.register_plugin("same", types.SimpleNamespace(PLUGIN_API=(1, 0)))
    assert host.records["same"].status == "loaded"
    assert host.provider("vad", "first-vad")
