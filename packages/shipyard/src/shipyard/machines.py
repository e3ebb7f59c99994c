"""Machine presets (Trigger.dev's names and prices): name → vCPU, memory (GB), price per ms.

On a local worker a preset is informational (``ctx.machine``); it is validated everywhere a
task or a trigger names one, and its price feeds ``cost_in_cents``.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.errors import ValidationError

__all__ = ["DEFAULT_MACHINE", "MACHINES", "MachinePreset", "machine_preset", "validate_machine"]


@dataclass(frozen=True, slots=True)
class MachinePreset:
    """A preset's size and price (``cents_per_ms``, as Trigger.dev's ``centsPerMs``)."""

    name: str
    cpu: float
    memory: float
    cents_per_ms: float


MACHINES: dict[str, MachinePreset] = {
    p.name: p
    for p in (
        MachinePreset("micro", 0.25, 0.25, 0.0000017),
        MachinePreset("small-1x", 0.5, 0.5, 0.0000034),
        MachinePreset("small-2x", 1, 1, 0.0000068),
        MachinePreset("medium-1x", 1, 2, 0.0000085),
        MachinePreset("medium-2x", 2, 4, 0.000017),
        MachinePreset("large-1x", 4, 8, 0.000034),
        MachinePreset("large-2x", 8, 16, 0.000068),
    )
}
DEFAULT_MACHINE = "small-1x"


def validate_machine(value: object, *, where: str = "machine") -> str:
    """A preset name (``"large-1x"`` or ``{"preset": "large-1x"}``), else ValidationError."""
    name = value.get("preset") if isinstance(value, dict) else value
    if not isinstance(name, str) or name not in MACHINES:
        raise ValidationError(
            f"Unknown {where} {name!r}; presets: {', '.join(MACHINES)}.", machine=str(name)
        )
    return name


def machine_preset(name: str | None) -> MachinePreset:
    """The preset (the default one when ``name`` is None)."""
    return MACHINES[name or DEFAULT_MACHINE]
