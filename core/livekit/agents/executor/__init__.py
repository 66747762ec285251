"""Job executors: where the worker runs its jobs (``inline`` asyncio tasks, or ``process``)."""
