"""Default settings module (``mapsite.settings``): the base settings, from the environment."""

from .base import *  # noqa: F403
