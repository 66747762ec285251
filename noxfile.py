"""Sessions: tests (the whole suite), plugin-<name> (one plugin's tests), lint, typecheck, bench, demo.

Every session installs our distributions from this checkout's paths, in one pip command:
PyPI has unrelated packages with the same names.
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PLUGINS = sorted(p.name.removeprefix("livekit-plugins-") for p in (ROOT / "plugins").glob("livekit-plugins-*") if (p / "pyproject.toml").exists())

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True


def _editable(*plugins: str) -> list[str]:
    args = ["-e", "./core[test]"]
    for name in plugins:
        args += ["-e", f"./plugins/livekit-plugins-{name}"]
    return args


def _prepare(session: nox.Session, *plugins: str, server: bool = True, cluster: bool = False) -> None:
    session.install(*_editable(*plugins), "hatchling", "editables")
    session.run("python", "scripts/system_deps.py", *(["--server"] if server else []),
                *(["--cluster"] if cluster else []))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: core, worker, plugin host and every plugin."""
    _prepare(session, *PLUGINS, cluster=True)
    session.run("python", "-m", "pytest", *(session.posargs or ["tests", "plugins"]))


@nox.session(name="plugin")
@nox.parametrize("name", PLUGINS)
def plugin(session: nox.Session, name: str) -> None:
    """One plugin's own tests, with only core and that plugin installed: `nox -s "plugin(name='silero')"`."""
    _prepare(session, name, server=False)
    session.run("python", "-m", "pytest", f"plugins/livekit-plugins-{name}/tests", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", "core", "plugins", "tests", "bench", "examples", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over core (livekit.agents): its public API is typed and checked."""
    session.install("-e", "./core[test]", "mypy>=1.10")
    session.run("mypy", *(session.posargs or []), "-p", "livekit.agents", env={"MYPYPATH": str(ROOT / "core")})


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks; each prints its figures beside a baseline measured in the same run."""
    _prepare(session, *PLUGINS, cluster=True)
    scripts = session.posargs or sorted(str(p) for p in (ROOT / "bench").glob("bench_*.py"))
    for script in scripts:
        session.run("python", script)


@nox.session
def demo(session: nox.Session) -> None:
    """A local LiveKit server, a worker running a no-cloud agent (silero VAD + nltk), and a
    participant speaking into a room; prints what the agent sends back, then stops."""
    _prepare(session, "silero", "nltk")
    session.run("python", "examples/demo.py", *session.posargs)


@nox.session
def mutants(session: nox.Session) -> None:
    """Mutation testing (mutmut 3) of the modules where a silent bug hurts most; prints the
    survivors. Targets: `nox -s mutants -- retry plugin_host deepgram silero_batching worker
    worker_offers` (default: every target but worker_offers, whose mutants each run the real
    LiveKit server). Long: not part of .ci/run. See docs/testing.md."""
    offers = "worker_offers" in session.posargs
    _prepare(session, "deepgram", "silero", server=offers)
    session.install("mutmut>=3,<4")
    session.run("nice", "-n", "19", "python", "scripts/mutants.py", *session.posargs, external=True)
