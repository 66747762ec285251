"""Helpers shared by the core and plugins: audio frames, push/pull streams."""
