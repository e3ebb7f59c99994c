"""The HTTP API's routes, one module per noun: ``tasks`` (trigger, batch, task list,
idempotency keys), ``runs``, ``batches``, ``queues``, ``waitpoints`` (wait tokens),
``schedules`` and ``auth`` (public access tokens). Each exposes ``router()``."""
