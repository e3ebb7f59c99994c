"""What ``@schedules.task(cron=...)`` accepts, and which environment type an environment is.

Validated where the task is defined (at import), so a bad pattern, time zone, window or
environment name fails there with a ``ValidationError`` naming the task.
"""

from __future__ import annotations

from shipyard.cron import parse, validate_timezone
from shipyard.errors import ValidationError
from shipyard.models.schedules import ENVIRONMENT_TYPES, CronSchedule
from shipyard.schedule_ticks import parse_window

__all__ = ["cron_schedule", "environment_type"]


def environment_type(environment: str) -> str:
    """The Trigger.dev environment type of a Shipyard environment name: ``production`` →
    ``PRODUCTION``, ``preview/<branch>`` → ``PREVIEW``, ``dev`` → ``DEVELOPMENT``."""
    name = environment.split("/", 1)[0].upper()
    return {"DEV": "DEVELOPMENT", "PROD": "PRODUCTION"}.get(name, name)


def cron_schedule(value: object, task_id: str) -> CronSchedule:
    """Validate ``@schedules.task``'s ``cron=``: a pattern (UTC) or
    ``{"pattern", "timezone"?, "environments"?, "window"?}``."""
    where = f"cron of task '{task_id}'"
    if isinstance(value, CronSchedule):
        spec = value
    elif isinstance(value, str):
        spec = CronSchedule(pattern=value)
    elif isinstance(value, dict):
        unknown = sorted(set(value) - {"pattern", "timezone", "environments", "window"})
        if unknown:
            raise ValidationError(
                f"Unknown key {unknown[0]!r} in the {where}; use pattern, timezone, "
                "environments and window.",
                task_id=task_id,
            )
        if "pattern" not in value:
            raise ValidationError(f"The {where} needs a 'pattern'.", task_id=task_id)
        environments = value.get("environments") or ()
        if isinstance(environments, str) or not all(isinstance(e, str) for e in environments):
            raise ValidationError(
                f"'environments' in the {where} must be a list of names such as "
                "['PRODUCTION', 'STAGING'].",
                task_id=task_id,
            )
        spec = CronSchedule(
            pattern=value["pattern"],
            timezone=value.get("timezone") or "UTC",
            environments=tuple(e.upper() for e in environments),
            window=value.get("window"),
        )
    else:
        raise ValidationError(
            f"The {where} must be a cron pattern or a dict with 'pattern'; got "
            f"{type(value).__name__}.",
            task_id=task_id,
        )
    for name in spec.environments:
        if name not in ENVIRONMENT_TYPES:
            raise ValidationError(
                f"Unknown environment {name!r} in the {where}; use {', '.join(ENVIRONMENT_TYPES)}.",
                task_id=task_id,
            )
    parse(spec.pattern)
    validate_timezone(spec.timezone)
    if spec.window is not None:
        parse_window(spec.window)
    return spec
