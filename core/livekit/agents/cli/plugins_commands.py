"""``agents plugins list`` and ``agents plugins check``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..plugin_host import PluginRecord
    from ..testing.conformance import CheckResult
    from .main import HostOptions

_PROBLEM = ("failed", "incompatible")


@click.group()
def plugins() -> None:
    """List the installed plugins and check them against the plugin contract."""


def _options(ctx: click.Context) -> HostOptions:
    from .main import HostOptions

    obj = ctx.find_object(HostOptions)
    return obj if obj is not None else HostOptions()


def _provides(record: PluginRecord) -> str:
    parts = [f"{cap}: {', '.join(names)}" for cap, names in sorted(record.providers.items()) if names]
    return "; ".join(parts) or "-"


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def render_table(records: list[PluginRecord]) -> str:
    """The human-readable plugin table, one row per plugin, errors on the line below."""
    if not records:
        return (
            "No plugins installed (entry-point group livekit.agents.plugins is empty).\n"
            "Install one from this repository, e.g.: pip install ./plugins/livekit-plugins-silero"
        )
    header = ["NAME", "DISTRIBUTION", "VERSION", "STATUS", "PROVIDES"]
    rows = [
        [
            r.name,
            r.distribution or "-",
            r.version or "-",
            r.status,
            _provides(r) if r.status == "loaded" else "-",
        ]
        for r in records
    ]
    lines = _table(rows, header)
    out = lines[:2]
    for record, line in zip(records, lines[2:], strict=True):
        out.append(line)
        if record.error:
            out.append(f"    error: {record.error}")
        for warning in record.warnings:
            out.append(f"    warning: {warning}")
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    out.append("")
    out.append(f"{len(records)} plugin{'s' if len(records) != 1 else ''}: {summary}")
    if any(r.status in _PROBLEM for r in records):
        out.append(
            "Broken plugins are skipped; the others work. Block one with --disable-plugin NAME, "
            "make failures fatal with --strict, or see docs/plugins.md (What to do if it breaks)."
        )
    return "\n".join(out)


@plugins.command("list")
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON array (one object per plugin) for machines."
)
@click.pass_context
def list_plugins(ctx: click.Context, as_json: bool) -> None:
    """List installed plugins: name, distribution, version, status, providers.

    Status is loaded, failed (import error, bad hook, exception while registering),
    incompatible (built for another plugin API), blocked (--disable-plugin) or disabled
    (not chosen by --plugins).
    """
    host = _options(ctx).host(quiet=True)
    records = host.plugins()
    if as_json:
        click.echo(json.dumps([r.to_json() for r in records], indent=2))
    else:
        click.echo(render_table(records))


_MARK = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def render_verdict(name: str, record: PluginRecord | None, results: list[CheckResult]) -> str:
    """The readable verdict of ``agents plugins check``."""
    title = f"Checking plugin {name!r}"
    if record is not None and record.distribution:
        title += f" ({record.distribution} {record.version or ''})".rstrip()
    out = [title]
    for r in results:
        out.append(f"  {_MARK.get(r.outcome, r.outcome.upper())}  {r.check}")
        for detail in r.detail.splitlines() if r.detail else []:
            out.append(f"        {detail}")
    passed = sum(r.outcome == "passed" for r in results)
    failed = sum(r.outcome == "failed" for r in results)
    skipped = sum(r.outcome == "skipped" for r in results)
    verdict = "FAILED" if failed else "OK"
    if not failed and nothing_verified(results):
        verdict = "NOT VERIFIED"
    out.append(f"{verdict}: {passed} passed, {failed} failed, {skipped} skipped")
    if verdict == "NOT VERIFIED":
        out.append(
            "Every contract check was skipped, so no provider of this plugin was tested. Give the "
            "plugin a testing.conformance_environment() with a loopback fake (docs/plugins.md, "
            "section 4), or set its credentials to test against the real service."
        )
    return "\n".join(out)


def nothing_verified(results: list[CheckResult]) -> bool:
    """Every contract check was skipped (e.g. missing credentials and no fake)."""
    contracts = [r for r in results if r.check.endswith(" contract")]
    return bool(contracts) and all(r.outcome == "skipped" for r in contracts)


@plugins.command("check")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def check_plugin(ctx: click.Context, name: str, as_json: bool) -> None:
    """Run the conformance checks against the installed plugin NAME.

    Checks that it is discoverable, built for this plugin API, loads without importing its
    SDK, and that each provider it registers keeps its capability's contract (real speech
    from espeak-ng, real text). Cloud plugins run against the loopback fake their
    ``testing`` module provides. Exit status: 0 all passed, 1 a check failed, 2 no such
    plugin, 3 nothing verified (every contract check skipped).
    """
    import asyncio

    from ..testing import conformance

    host = _options(ctx).host(quiet=True)
    record = host.records.get(name)
    if record is None:
        from pathlib import Path

        installed = ", ".join(sorted(host.records)) or "none"
        local = Path("plugins") / f"livekit-plugins-{name}"
        how = (
            f"pip install ./{local.as_posix()}"
            if (local / "pyproject.toml").exists()
            else "pip install the distribution that provides it (its entry point in the group "
            f"livekit.agents.plugins must be named {name!r})"
        )
        click.echo(
            f"Error: no plugin named {name!r} is installed (installed: {installed}).\n"
            f"Install it: {how}; then check `agents plugins list`.",
            err=True,
        )
        sys.exit(2)
    try:
        results = asyncio.run(conformance.check_plugin(name, host))
    except Exception as exc:  # e.g. the plugin's conformance_environment() could not start its fake
        first = (str(exc).strip().splitlines() or [""])[0]
        click.echo(
            f"Error: the checks of plugin {name!r} could not run: {type(exc).__name__}: {first}", err=True
        )
        sys.exit(1)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        click.echo(render_verdict(name, record, results))
    if any(r.outcome == "failed" for r in results):
        sys.exit(1)
    if nothing_verified(results):
        sys.exit(3)
