"""Declaring pipeline steps: the Django counterpart of DataJoint's Imported/Computed tables.

A step says which keys should exist (``key_source``: a queryset of its key model), what it
depends on, and how to make one key (``make``), which runs inside one transaction together with
marking the job done. Apps declare their steps in ``<app>/steps.py``; they are discovered at
start-up (PipelineConfig.ready).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import models


class StepWaiting(Exception):  # noqa: N818 - a state, not an error
    """Raised by ``make`` when a prerequisite is missing (e.g. the subject is not entered yet).

    The job is parked as *waiting* with this message and retried by every sweep.
    """


@dataclass(frozen=True)
class Step:
    name: str
    key_model: type[models.Model]
    key_source: Callable[[], models.QuerySet]
    make: Callable[[models.Model], None]
    depends_on: tuple[str, ...] = ()
    queue: str = "compute"
    soft_time_limit: int | None = None
    description: str = ""
    # Optional: the keys of this step that a finished upstream key can unlock (narrows the scan).
    keys_after: Callable[[str, int], Iterable[int]] | None = field(default=None, compare=False)

    def missing_keys(self) -> models.QuerySet:
        """Keys of the key source that have no job yet."""
        from .models import Job

        made = Job.objects.filter(step=self.name).values("key_id")
        return self.key_source().exclude(pk__in=made)


REGISTRY: dict[str, Step] = {}


def register(step: Step) -> Step:
    if step.name in REGISTRY and REGISTRY[step.name] != step:
        raise ValueError(f"pipeline step {step.name!r} is declared twice")
    REGISTRY[step.name] = step
    return step


def pipeline_step(
    name: str,
    *,
    key_model: type[models.Model],
    key_source: Callable[[], models.QuerySet] | None = None,
    depends_on: Iterable[str] = (),
    queue: str = "compute",
    soft_time_limit: int | None = None,
    keys_after: Callable[[str, int], Iterable[int]] | None = None,
) -> Callable[[Callable[[models.Model], None]], Callable[[models.Model], None]]:
    """Decorator form: ``@pipeline_step("X", key_model=M)`` over ``def make(key_row): ...``."""

    def decorate(make: Callable[[models.Model], None]) -> Callable[[models.Model], None]:
        register(
            Step(
                name=name,
                key_model=key_model,
                key_source=key_source or key_model.objects.all,
                make=make,
                depends_on=tuple(depends_on),
                queue=queue,
                soft_time_limit=soft_time_limit,
                description=(make.__doc__ or "").strip().split("\n")[0],
                keys_after=keys_after,
            )
        )
        return make

    return decorate


# Discoveries find new inputs (files on data roots) and record them as keys of ingest steps.
# Each sweep runs them first; ``manage.py ingest_*`` commands call them directly.
DISCOVERIES: dict[str, Callable[[], object]] = {}


def register_discovery(name: str) -> Callable[[Callable[[], object]], Callable[[], object]]:
    def decorate(func: Callable[[], object]) -> Callable[[], object]:
        DISCOVERIES[name] = func
        return func

    return decorate


def get_step(name: str) -> Step:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise KeyError(f"unknown pipeline step {name!r} (known: {known})") from None


def ordered_steps(names: Iterable[str] | None = None) -> list[Step]:
    """Steps in dependency order (upstream first); ``names`` restricts the selection."""
    wanted = set(names) if names else set(REGISTRY)
    for n in wanted:
        get_step(n)
    ordered: list[Step] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ValueError(f"pipeline steps depend on each other in a cycle: {path + (name,)}")
        if name in seen:
            return
        for up in get_step(name).depends_on:
            visit(up, path + (name,))
        seen.add(name)
        ordered.append(get_step(name))

    for n in sorted(wanted):
        visit(n, ())
    return [s for s in ordered if s.name in wanted]


def downstream_of(name: str) -> list[Step]:
    return [s for s in REGISTRY.values() if name in s.depends_on]
