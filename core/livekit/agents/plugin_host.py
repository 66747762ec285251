"""Finds plugins through entry points, loads each one guarded, and calls their hooks.

One :class:`PluginHost` per process (:func:`get_plugin_host`). Loading never imports a
provider SDK: plugin modules register factories, and the SDK loads when a factory runs.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import pluggy

from . import capabilities, hookspecs
from .exceptions import PluginError, ProviderClashError, ProviderNotFoundError, ProviderTypeError
from .registry import Capability, Provider, Registry

if TYPE_CHECKING:
    from .llm import LLM
    from .stt import STT
    from .tokenize import SentenceTokenizer, WordTokenizer
    from .tts import TTS
    from .vad import VAD

logger = logging.getLogger("livekit.agents")
trace_logger = logging.getLogger("livekit.agents.plugins.trace")

Status = Literal["loaded", "failed", "incompatible", "blocked", "disabled"]

ENV_PLUGINS = "LIVEKIT_AGENTS_PLUGINS"
"""Comma-separated plugin names to load; unset loads all, empty loads none."""
ENV_DISABLE = "LIVEKIT_AGENTS_DISABLE_PLUGINS"
"""Comma-separated plugin names never to load."""
ENV_STRICT = "LIVEKIT_AGENTS_STRICT_PLUGINS"
"""``1`` makes any plugin failure fatal."""
ENV_TRACE = "LIVEKIT_AGENTS_TRACE_PLUGINS"
"""``1`` logs every hook call (logger ``livekit.agents.plugins.trace``)."""


@dataclass
class PluginRecord:
    """What the host knows about one plugin, whatever its status."""

    name: str
    distribution: str | None
    version: str | None
    entry_point: str
    module: str
    status: Status
    api_version: tuple[int, int] | None = None
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    providers: dict[str, list[str]] = field(default_factory=dict)
    location: str | None = None
    load_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    """Problems that did not fail the plugin (a provider refused because another plugin has its name)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": self.entry_point,
            "module": self.module,
            "api_version": list(self.api_version) if self.api_version else None,
            "status": self.status,
            "error": self.error,
            "hooks": self.hooks,
            "providers": self.providers,
            "location": self.location,
            "warnings": self.warnings,
        }


def _names_from_env(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def _flag_from_env(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """``Type: message`` on one line (a multi-line message is joined with ``; ``)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {'; '.join(lines)}".rstrip(": ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plugin_api(module: Any, module_name: str, plugin: str) -> tuple[int, int]:
    """The module's ``PLUGIN_API``, or a :class:`PluginError` saying what is wrong with it."""
    if not hasattr(module, "PLUGIN_API"):
        raise PluginError(
            f"the plugin module {module_name} does not declare PLUGIN_API = (major, minor)", plugin=plugin
        )
    api = module.PLUGIN_API
    if not (isinstance(api, tuple) and len(api) == 2 and all(type(x) is int for x in api)):
        hint = ""
        if isinstance(api, (str, float)):
            parts = str(api).split(".")
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                hint = f"; write PLUGIN_API = ({int(parts[0])}, {int(parts[1])})"
        raise PluginError(
            f"PLUGIN_API in {module_name} has the wrong type: {api!r} ({type(api).__name__}); "
            f"it must be a tuple of two ints, (major, minor){hint}",
            plugin=plugin,
        )
    return api


def is_compatible(api: tuple[int, int], host: tuple[int, int] = hookspecs.PLUGIN_API) -> bool:
    """A plugin built for ``api`` runs on a host of ``host`` API version."""
    return api[0] == host[0] and api[1] <= host[1]


class PluginHost:
    """The process's plugin manager: loading, status records, providers and hook calls."""

    def __init__(
        self,
        *,
        only: Iterable[str] | None = None,
        disable: Iterable[str] = (),
        strict: bool = False,
        trace: bool = False,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.records: dict[str, PluginRecord] = {}
        self.only = set(only) if only is not None else None
        self.disable = set(disable)
        self.strict = strict
        self.trace = trace
        self._loaded = False

    @classmethod
    def from_env(cls, **overrides: Any) -> PluginHost:
        """A host configured from ``LIVEKIT_AGENTS_*`` variables, then ``overrides``."""
        opts: dict[str, Any] = {
            "only": _names_from_env(ENV_PLUGINS),
            "disable": _names_from_env(ENV_DISABLE) or set(),
            "strict": _flag_from_env(ENV_STRICT),
            "trace": _flag_from_env(ENV_TRACE),
        }
        opts.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**opts)

    # --- loading -----------------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Load every installed plugin once; idempotent."""
        if self._loaded:
            return
        self._loaded = True
        seen: set[str] = set()
        for ep in sorted(metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in seen:
                logger.warning("plugin %r is declared twice; using the first one", ep.name)
                continue
            seen.add(ep.name)
            self._load(ep)

    def _load(self, ep: metadata.EntryPoint) -> None:
        dist = getattr(ep, "dist", None)
        record = PluginRecord(
            name=ep.name,
            distribution=dist.metadata["Name"] if dist else None,
            version=dist.version if dist else None,
            entry_point=f"{ep.name} = {ep.value}",
            module=ep.value.split(":")[0],
            status="loaded",
        )
        self.records[ep.name] = record
        if ep.name in self.disable:
            record.status = "blocked"
            self.pm.set_blocked(ep.name)
            self._trace("plugin %s blocked (not loaded)", ep.name)
            return
        if self.only is not None and ep.name not in self.only:
            record.status = "disabled"
            self._trace("plugin %s disabled (not among the chosen plugins)", ep.name)
            return
        self._trace("loading plugin %s from %s (%s %s)", ep.name, ep.value, record.distribution, record.version)
        started = time.perf_counter()
        try:
            module = ep.load()
            record.location = getattr(module, "__file__", None)
            api = _plugin_api(module, record.module, ep.name)
            record.api_version = api
            if not is_compatible(api):
                record.status = "incompatible"
                record.error = (
                    f"built for plugin API {api[0]}.{api[1]}, this livekit-agents "
                    f"{_core_version()} provides {hookspecs.PLUGIN_API[0]}.{hookspecs.PLUGIN_API[1]}; "
                    f"install a version of {record.distribution or ep.name} made for it"
                )
                if self.strict:
                    raise PluginError(f"plugin {ep.name!r} is incompatible: {record.error}", plugin=ep.name)
                logger.warning("plugin %s skipped: %s", ep.name, record.error)
                return
            self._register(ep.name, module, record)
        except PluginError as exc:
            if record.status == "incompatible":
                raise
            self._fail(ep.name, record, exc)
        except Exception as exc:  # one broken plugin never takes the host down
            self._fail(ep.name, record, exc)
        finally:
            record.load_seconds = time.perf_counter() - started
            self._trace(
                "plugin %s %s in %.1f ms%s", ep.name, record.status, 1000 * record.load_seconds,
                f": {record.error}" if record.error else "",
            )

    def _fail(self, name: str, record: PluginRecord, exc: Exception) -> None:
        """Mark ``name`` failed and undo whatever it registered (never half-loaded)."""
        self._undo(name, record, exc)
        if self.strict:
            raise PluginError(f"plugin {name!r} failed to load: {record.error}", plugin=name) from exc
        logger.warning("plugin %s failed to load: %s", name, record.error)

    def _undo(self, name: str, record: PluginRecord, exc: Exception) -> None:
        """Record why ``name`` failed and remove whatever it registered."""
        record.status = "failed"
        record.error = str(exc) if isinstance(exc, PluginError) else _one_line(exc)
        record.providers = {}
        self.registry.remove_plugin(name)
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)

    def register_plugin(self, name: str, module: Any, *, distribution: str | None = None) -> PluginRecord:
        """Register a plugin object directly (tests, one-off plugins in an agent script).
        A name already in use is refused and the plugin registered under it stays."""
        if self.pm.get_plugin(name) is not None:
            raise PluginError(f"a plugin named {name!r} is registered already: give this one another name "
                              f"(or unregister the other first)")
        record = PluginRecord(
            name=name,
            distribution=distribution,
            version=None,
            entry_point="(registered in code)",
            module=getattr(module, "__name__", repr(module)),
            status="loaded",
            api_version=getattr(module, "PLUGIN_API", hookspecs.PLUGIN_API),
        )
        self.records[name] = record
        try:
            self._register(name, module, record)
        except Exception as exc:
            self._undo(name, record, exc)
            raise
        return record

    def _register(self, name: str, module: Any, record: PluginRecord) -> None:
        self.pm.register(module, name=name)  # validates hook signatures
        self._check_unknown_hooks(name)
        self._check_plain_functions(name)
        self._guard_worker_hooks(name)
        record.hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or [])
        staged: list[Provider] = []
        for hook_name in hookspecs.CAPABILITY_HOOKS:
            for impl in self._impls(hook_name, name):
                cb = self._callback(capabilities.for_hook(hook_name), staged, record)
                self._call_impl(hook_name, impl, {"register": cb})
        for provider in staged:
            try:
                self.registry.add(provider)
            except ProviderClashError as exc:  # only the clashing provider is refused
                record.warnings.append(str(exc))
                logger.warning("plugin %s: %s", name, exc)
                continue
            record.providers.setdefault(provider.capability, []).append(provider.name)
            self._trace("plugin %s registered %s provider %r", name, provider.capability, provider.name)

    def _check_plain_functions(self, name: str) -> None:
        """Reject ``async def`` (or generator) hook implementations: pluggy does not await,
        so their body would never run and their providers would silently be missing."""
        for caller in self.pm.get_hookcallers(self.pm.get_plugin(name)) or []:
            for impl in caller.get_hookimpls():
                fn = impl.function
                if impl.plugin_name == name and (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)):
                    raise PluginError(
                        f"hook {caller.name!r} is an async def; pluggy never awaits it, so its body "
                        f"would not run. Make it a plain def (do async work in the objects it creates)",
                        plugin=name,
                        hook=caller.name,
                    )

    def _check_unknown_hooks(self, name: str) -> None:
        """Reject a plugin implementing a hook this core does not define (a typo, or a
        hook of a newer plugin API), like pluggy's ``check_pending`` but for one plugin."""
        for hook_name, caller in vars(self.pm.hook).items():
            if caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin_name == name and not impl.optionalhook:
                    known = ", ".join(hookspecs.CAPABILITY_HOOKS + hookspecs.WORKER_HOOKS)
                    raise PluginError(
                        f"unknown hook {hook_name!r} (livekit-agents {_core_version()} defines: {known}); "
                        f"fix the name or mark it @hookimpl(optionalhook=True)",
                        plugin=name,
                        hook=hook_name,
                    )

    def _callback(self, caps: list[capabilities.Capability], staged: list[Provider], record: PluginRecord) -> Callable[..., None]:
        """The ``register`` callback of a capability hook; hooks of several capabilities
        (tokenizers) take the capability's ``kind``."""
        kinds = {c.kind: c for c in caps if c.kind is not None}
        if not kinds:
            cap = caps[0]

            def register(name: str, factory: Callable[..., Any], *, description: str = "") -> None:
                self._stage(staged, self._provider(cap.name, name, factory, description, record))

        else:

            def register(name: str, factory: Callable[..., Any], *, kind: str, description: str = "") -> None:  # type: ignore[misc]
                if kind not in kinds:
                    raise ValueError(f"{caps[0].hook}: kind must be one of {', '.join(map(repr, kinds))}, not {kind!r}")
                self._stage(staged, self._provider(kinds[kind].name, name, factory, description, record))

        register._trace_repr = f"<register {'/'.join(c.name for c in caps)} providers for plugin {record.name}>"  # type: ignore[attr-defined]
        return register

    @staticmethod
    def _stage(staged: list[Provider], provider: Provider) -> None:
        if any(p.capability == provider.capability and p.name == provider.name for p in staged):
            raise ValueError(f"{provider.capability} provider {provider.name!r} is registered twice by this plugin")
        staged.append(provider)

    @staticmethod
    def _provider(capability: Capability, name: str, factory: Any, description: str, record: PluginRecord) -> Provider:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {capability} provider needs a non-empty name, got {name!r}")
        if not callable(factory):
            raise TypeError(f"the factory of {capability} provider {name!r} is not callable")
        return Provider(capability, name, factory, record.name, record.distribution, record.version, description)

    # --- calling hooks -----------------------------------------------------------------

    def _impls(self, hook_name: str, plugin: str | None = None) -> list[Any]:
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        return [i for i in reversed(impls) if plugin is None or i.plugin_name == plugin]

    def _trace(self, msg: str, *args: Any) -> None:
        if self.trace:
            trace_logger.info(msg, *args)

    def _call_impl(self, hook_name: str, impl: Any, kwargs: dict[str, Any]) -> Any:
        """Call one plugin's ``impl`` of ``hook_name``, traced when tracing is on; an
        exception propagates (the caller rolls the plugin back)."""
        args = [kwargs[a] for a in impl.argnames]
        if not self.trace:
            return impl.function(*args)
        shown = ", ".join(f"{a}={_short_repr(kwargs[a])}" for a in impl.argnames)
        trace_logger.info("hook %s(%s) -> plugin %s", hook_name, shown, impl.plugin_name)
        started = time.perf_counter()
        try:
            result = impl.function(*args)
        except Exception as exc:
            trace_logger.info("hook %s <- plugin %s raised %s", hook_name, impl.plugin_name, _one_line(exc))
            raise
        trace_logger.info(
            "hook %s <- plugin %s returned %s in %.2f ms", hook_name, impl.plugin_name,
            _short_repr(result), 1000 * (time.perf_counter() - started),
        )
        return result

    def call(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a worker hook through pluggy (``pm.hook.<name>``, so ``wrapper=True`` impls
        and ``pm.add_hookcall_monitoring`` work). Each plugin's impl is guarded: one that
        raises is logged and skipped, and the others' results are kept; in strict mode the
        error is raised as :class:`PluginError`. Returns the non-``None`` results."""
        if hook_name not in hookspecs.WORKER_HOOKS:
            raise ValueError(f"{hook_name!r} is not a worker hook")
        results: list[Any] = getattr(self.pm.hook, hook_name)(**kwargs)
        return results

    def _guard_worker_hooks(self, name: str) -> None:
        """Wrap each worker-hook impl of plugin ``name`` so that its exception is contained."""
        for caller in self.pm.get_hookcallers(self.pm.get_plugin(name)) or []:
            if caller.name not in hookspecs.WORKER_HOOKS:
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin_name != name or impl.wrapper or impl.hookwrapper:
                    continue
                # pluggy marks HookImpl.function Final; replacing it is how the guard joins pm.hook calls
                setattr(impl, "function", self._guarded(caller.name, impl.plugin_name, impl.function, impl.argnames))  # noqa: B010

    def _guarded(self, hook_name: str, plugin: str, fn: Callable[..., Any], argnames: tuple[str, ...]) -> Callable[..., Any]:
        def guarded(*args: Any) -> Any:
            if self.trace:
                shown = ", ".join(f"{a}={_short_repr(v)}" for a, v in zip(argnames, args, strict=False))
                trace_logger.info("hook %s(%s) -> plugin %s", hook_name, shown, plugin)
            started = time.perf_counter()
            try:
                result = fn(*args)
            except Exception as exc:
                if self.trace:
                    trace_logger.info("hook %s <- plugin %s raised %s", hook_name, plugin, _one_line(exc))
                if self.strict:
                    raise PluginError(
                        f"plugin {plugin!r} raised in hook {hook_name}: {_one_line(exc)} (strict mode)",
                        plugin=plugin,
                        hook=hook_name,
                    ) from exc
                logger.exception(
                    "plugin %s raised in hook %s: %s", plugin, hook_name, _one_line(exc),
                    extra={"plugin": plugin, "hook": hook_name},
                )
                return None
            if self.trace:
                trace_logger.info(
                    "hook %s <- plugin %s returned %s in %.2f ms", hook_name, plugin,
                    _short_repr(result), 1000 * (time.perf_counter() - started),
                )
            return result

        guarded.__wrapped__ = fn  # type: ignore[attr-defined]
        return guarded

    # --- queries -----------------------------------------------------------------------

    def provider(self, capability: Capability, name: str) -> Provider:
        """The provider, or :class:`ProviderNotFoundError` that says why it is missing:
        its plugin failed (and why), is incompatible, blocked or left out, or is not installed."""
        try:
            return self.registry.get(capability, name)
        except ProviderNotFoundError:
            record = self.records.get(name)
            if record is None or record.status == "loaded":
                raise
            reasons = {
                "failed": f"plugin {name!r} is installed but failed to load: {record.error}",
                "incompatible": f"plugin {name!r} is installed but incompatible: {record.error}",
                "blocked": f"plugin {name!r} is blocked (--disable-plugin / LIVEKIT_AGENTS_DISABLE_PLUGINS)",
                "disabled": f"plugin {name!r} is left out by --plugins / LIVEKIT_AGENTS_PLUGINS",
            }
            raise ProviderNotFoundError(
                f"no {capability} provider named {name!r} is available: {reasons[record.status]}. "
                f"See `agents plugins list` and docs/plugins.md (What to do if it breaks)."
            ) from None

    def plugins(self) -> list[PluginRecord]:
        return sorted(self.records.values(), key=lambda r: r.name)

    def failed(self) -> list[PluginRecord]:
        return [r for r in self.plugins() if r.status in ("failed", "incompatible")]


def _short_repr(value: Any, limit: int = 80) -> str:
    text = getattr(value, "_trace_repr", None) or repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _core_version() -> str:
    from .version import __version__

    return __version__


_host: PluginHost | None = None


def get_plugin_host() -> PluginHost:
    """The process's plugin host, with every installed plugin loaded (once)."""
    global _host
    if _host is None:
        _host = PluginHost.from_env()
        _host.load_entry_points()
    return _host


def set_plugin_host(host: PluginHost | None) -> None:
    """Replace the process's plugin host (the CLI's options, tests)."""
    global _host
    _host = host


def create(capability: Capability, name: str, **options: Any) -> Any:
    """Create the ``capability`` implementation named ``name`` from the installed plugins.

    Raises :class:`ProviderNotFoundError` (saying whether the plugin is missing or failed)
    and :class:`ProviderTypeError` when the plugin's factory returned something that is
    not an instance of the capability's base class."""
    cap = capabilities.get(capability)
    host = get_plugin_host()
    provider = host.provider(cap.name, name)
    instance = provider.create(**options)
    base = cap.base_class()
    if not isinstance(instance, base):
        raise ProviderTypeError(
            f"the {cap.name} provider {name!r} of plugin {provider.plugin!r} "
            f"({provider.distribution or 'registered in code'}) returned "
            f"{type(instance).__module__}.{type(instance).__qualname__}, not a {cap.base_name}; "
            f"its factory must return an instance of a {cap.base_name} subclass"
        )
    return instance


def create_stt(name: str, **options: Any) -> STT:
    """Create a speech-to-text provider by name, e.g. ``create_stt("deepgram", model="nova-2")``."""
    return cast("STT", create("stt", name, **options))


def create_tts(name: str, **options: Any) -> TTS:
    """Create a text-to-speech provider by name."""
    return cast("TTS", create("tts", name, **options))


def create_vad(name: str, **options: Any) -> VAD:
    """Create a voice activity detector by name."""
    return cast("VAD", create("vad", name, **options))


def create_llm(name: str, **options: Any) -> LLM:
    """Create a large language model by name, e.g. ``create_llm("openai", model="gpt-4o-mini")``."""
    return cast("LLM", create("llm", name, **options))


@overload
def create_tokenizer(name: str, *, kind: Literal["sentence"] = "sentence", **options: Any) -> SentenceTokenizer: ...
@overload
def create_tokenizer(name: str, *, kind: Literal["word"], **options: Any) -> WordTokenizer: ...
def create_tokenizer(name: str, *, kind: Literal["sentence", "word"] = "sentence", **options: Any) -> SentenceTokenizer | WordTokenizer:
    """Create a sentence (default) or word tokenizer by name."""
    for cap in capabilities.CAPABILITIES:
        if cap.hook == "register_tokenizers" and cap.kind == kind:
            return cast("SentenceTokenizer | WordTokenizer", create(cap.name, name, **options))
    raise ValueError(f"tokenizer kind must be 'sentence' or 'word', not {kind!r}")


__all__ = [
    "PluginHost",
    "PluginRecord",
    "get_plugin_host",
    "set_plugin_host",
    "create",
    "create_stt",
    "create_tts",
    "create_vad",
    "create_llm",
    "create_tokenizer",
    "is_compatible",
]
