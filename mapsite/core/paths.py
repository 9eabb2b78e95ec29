"""Confining file paths to the configured data roots.

Every path an ingest is given (by a scan, a command or the API) goes through
``resolve_in_roots``: it is resolved (``..`` and symlinks followed) and must land inside one of
the roots, itself resolved. Anything else is refused with a clear message.
"""

from dataclasses import dataclass
from pathlib import Path


class PathOutsideRootsError(ValueError):
    """A path that is not inside any configured data root."""


@dataclass(frozen=True)
class DataRoot:
    path: Path
    rig: str | None = None  # behavior roots belong to the rig that writes into them


def parse_roots(entries: list[str], *, with_rig: bool = False) -> list[DataRoot]:
    """Parse settings entries: ``/data/ephys`` or, for behavior roots, ``RRig=/data/rrig``."""
    roots = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        rig = None
        if with_rig:
            if "=" not in entry:
                raise ValueError(f"behavior data root {entry!r} must be written RIG=/path")
            rig, entry = (part.strip() for part in entry.split("=", 1))
        roots.append(DataRoot(path=Path(entry).expanduser(), rig=rig))
    return roots


def resolve_in_roots(path: str | Path, roots: list[DataRoot]) -> tuple[DataRoot, Path]:
    """Return (root, path relative to it) for a path that really lies inside a root."""
    if not roots:
        raise PathOutsideRootsError("no data root is configured")
    candidate = Path(path).expanduser()
    try:
        resolved = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise PathOutsideRootsError(f"{path}: no such file") from None
    except (OSError, RuntimeError) as exc:  # symlink loops, permissions
        raise PathOutsideRootsError(f"{path}: cannot be resolved ({exc})") from None
    for root in roots:
        try:
            root_resolved = root.path.resolve(strict=True)
        except (OSError, RuntimeError):
            continue  # a root that is not mounted right now cannot contain anything
        if resolved.is_relative_to(root_resolved):
            return root, resolved.relative_to(root_resolved)
    names = ", ".join(str(r.path) for r in roots)
    raise PathOutsideRootsError(
        f"{path} resolves to {resolved}, which is outside every configured data root ({names})"
    )
