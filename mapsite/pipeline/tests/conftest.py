"""Fixtures for testing the pipeline-step mechanism.

* ``make_step``: registers throwaway steps (keyed on ``lab.Rig`` rows) in the REGISTRY for one
  test and removes them afterwards. Their default ``make`` records the call and writes a
  ``lab.ModifiedGene`` row named ``"<step>:<rig pk>"`` (unique: a second make of a key would fail).

The lookup rows that a transactional test's flush removes are put back, and ``hard_timeout`` is
provided, by the root ``conftest.py`` (helpers in ``mapsite.core.testing``).
"""

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pytest
from django.db import models

from lab.models import ModifiedGene, Rig
from mapsite.pipeline.steps import REGISTRY, Step, register

# --- throwaway steps ----------------------------------------------------------------------------


@dataclass
class Recorder:
    """Thread-safe record of make() calls: (step name, key id) in call order."""

    calls: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, step: str, key_id: int) -> None:
        with self.lock:
            self.calls.append((step, key_id))

    def count(self, step: str | None = None, key_id: int | None = None) -> int:
        with self.lock:
            return sum(
                1
                for s, k in self.calls
                if (step is None or s == step) and (key_id is None or k == key_id)
            )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def made_marker(step: str, key_id: int) -> str:
    """Name of the ModifiedGene row a default throwaway make() writes."""
    return f"{step}:{key_id}"


@pytest.fixture
def make_step(recorder: Recorder) -> Iterator[Callable[..., Step]]:
    """``make_step("TestA", depends_on=..., make=..., sleep=...)`` registers a throwaway step."""
    added: list[str] = []

    def factory(
        name: str,
        *,
        make: Callable[[models.Model], None] | None = None,
        depends_on: Iterable[str] = (),
        key_source: Callable[[], models.QuerySet] | None = None,
        keys_after: Callable[[str, int], Iterable[int]] | None = None,
        sleep: float = 0.0,
        queue: str = "compute",
    ) -> Step:
        assert name not in REGISTRY, f"step {name} is already registered"

        def default_make(rig: Rig) -> None:
            recorder.record(name, rig.pk)
            if sleep:
                time.sleep(sleep)
            ModifiedGene.objects.create(name=made_marker(name, rig.pk))

        step = Step(
            name=name,
            key_model=Rig,
            key_source=key_source or Rig.objects.all,
            make=make or default_make,
            depends_on=tuple(depends_on),
            queue=queue,
            description=f"throwaway test step {name}",
            keys_after=keys_after,
        )
        register(step)
        added.append(name)
        return step

    yield factory
    for name in added:
        REGISTRY.pop(name, None)
