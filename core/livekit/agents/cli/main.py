"""The ``agents`` console script: inspect and check the installed plugins.

::

    agents --version
    agents plugins list [--json]
    agents plugins check NAME
    agents --plugins acme,silero --disable-plugin openai --strict --trace plugins list

The global options set up the process's plugin host; each has an environment variable
(``LIVEKIT_AGENTS_PLUGINS``, ``LIVEKIT_AGENTS_DISABLE_PLUGINS``,
``LIVEKIT_AGENTS_STRICT_PLUGINS``, ``LIVEKIT_AGENTS_TRACE_PLUGINS``); a command-line option
wins over its variable, and ``--disable-plugin`` adds to the variable's list.

This module imports only click and the plugin host: listing plugins never imports
``livekit.rtc``, numpy, onnxruntime or a provider SDK.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from ..version import __version__

if TYPE_CHECKING:
    from ..plugin_host import PluginHost


@dataclass
class HostOptions:
    """The global options, turned into a :class:`PluginHost` on first use."""

    only: set[str] | None = None
    disable: set[str] = field(default_factory=set)
    strict: bool | None = None
    trace: bool | None = None
    _host: PluginHost | None = None

    def host(self, *, quiet: bool = False) -> PluginHost:
        """The plugin host with every installed plugin loaded (once).

        ``quiet`` hides the host's per-plugin warnings (the caller shows the errors itself).
        A plugin failure in strict mode ends the command with exit status 1.
        """
        if self._host is not None:
            return self._host
        from ..exceptions import PluginError
        from ..plugin_host import ENV_DISABLE, PluginHost, _names_from_env, set_plugin_host

        disable = (_names_from_env(ENV_DISABLE) or set()) | self.disable
        host = PluginHost.from_env(only=self.only, disable=disable, strict=self.strict, trace=self.trace)
        _configure_logging(trace=host.trace, quiet=quiet and not host.strict)
        try:
            host.load_entry_points()
        except PluginError as exc:
            raise click.ClickException(
                f"{exc}\n(strict mode: any plugin failure is fatal. Fix or uninstall the plugin, block it "
                f"with --disable-plugin {exc.plugin or 'NAME'}, or drop --strict / LIVEKIT_AGENTS_STRICT_PLUGINS)"
            ) from None
        set_plugin_host(host)
        self._host = host
        return host


def _split_names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


def _configure_logging(*, trace: bool, quiet: bool) -> None:
    """Host warnings (and the hook trace) go to stderr, one line each."""
    root = logging.getLogger("livekit")
    if not any(getattr(h, "_agents_cli", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._agents_cli = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    if root.level == logging.NOTSET:
        root.setLevel(logging.WARNING)
    if quiet:
        logging.getLogger("livekit.agents").setLevel(logging.ERROR)
    if trace:
        trace_logger = logging.getLogger("livekit.agents.plugins.trace")
        trace_logger.setLevel(logging.DEBUG)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "--version", "-V", prog_name="livekit-agents", message="%(prog)s %(version)s"
)
@click.option(
    "--plugins",
    "only",
    metavar="NAMES",
    default=None,
    help="Load only these plugins (comma-separated names; '' loads none). "
    "The others are listed as disabled. [env: LIVEKIT_AGENTS_PLUGINS]",
)
@click.option(
    "--disable-plugin",
    "disable",
    metavar="NAME",
    multiple=True,
    help="Never load this plugin (repeatable); it is listed as blocked. "
    "[env: LIVEKIT_AGENTS_DISABLE_PLUGINS=a,b]",
)
@click.option(
    "--strict",
    is_flag=True,
    default=False,
    help="Make any plugin failure (import error, bad hook, incompatible API) fatal. "
    "[env: LIVEKIT_AGENTS_STRICT_PLUGINS=1]",
)
@click.option(
    "--trace",
    is_flag=True,
    default=False,
    help="Log every plugin hook call to stderr. [env: LIVEKIT_AGENTS_TRACE_PLUGINS=1]",
)
@click.pass_context
def cli(ctx: click.Context, only: str | None, disable: tuple[str, ...], strict: bool, trace: bool) -> None:
    """LiveKit Agents: inspect and check the installed plugins."""
    names: set[str] = set()
    for value in disable:
        names |= _split_names(value) or set()
    ctx.obj = HostOptions(
        only=_split_names(only),
        disable=names,
        strict=True if strict else None,
        trace=True if trace else None,
    )


def _register_commands() -> None:
    from .plugins_commands import plugins

    cli.add_command(plugins)


_register_commands()


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``agents`` console script."""
    return cli.main(args=argv, prog_name="agents")


if __name__ == "__main__":
    main()
