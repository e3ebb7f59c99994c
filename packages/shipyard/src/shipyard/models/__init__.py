"""Value types every layer shares: what triggering returns, runs as readers see them, tokens,
queues, batches, tasks and the ``ctx`` of a run.

A neutral package: it imports nothing from the engine, the store or the SDK, so the local engine
and the remote HTTP client return the same objects and the SDK, CLI, server and MCP server read
them alike.
"""
