"""Tools for testing agents and plugins: a real LiveKit server (or a cluster of nodes and
Redis) on loopback, real speech from espeak-ng, and the conformance checks every plugin
runs (also a pytest plugin)."""
