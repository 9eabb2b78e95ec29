"""Loading lookup contents from data migrations (one loader for every app)."""

from collections.abc import Iterable, Mapping
from typing import Any


def load_lookup(
    apps: Any, label: str, rows: Iterable[Mapping[str, Any]], key: str = "name"
) -> None:
    """Create or update lookup rows; re-running a migration or adding a row later is safe."""
    model = apps.get_model(label)
    for row in rows:
        values = dict(row)
        natural = {key: values.pop(key)} if key in values else {}
        model.objects.update_or_create(**natural, defaults=values)
