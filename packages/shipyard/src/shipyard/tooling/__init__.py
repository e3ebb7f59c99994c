"""Project tooling around the engine: ``check-envs``, ``deps`` and serving the template's apps."""
