"""Abstract bases shared by every app's models."""

from django.db import models


class LookupManager(models.Manager):
    def get_by_natural_key(self, name: str) -> "Lookup":
        return self.get(name=name)


class Lookup(models.Model):
    """A fixed reference table (the original's DataJoint Lookup tier).

    Contents are loaded by data migrations from each app's ``lookups.py``; the ``name`` is the
    original's primary key and stays unique, the integer id is only a surrogate.
    """

    name = models.CharField(max_length=128, unique=True)
    description = models.TextField(blank=True, default="")

    objects = LookupManager()

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str]:
        return (self.name,)


class Timestamped(models.Model):
    """Creation/modification times for rows written by people or ingest."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
