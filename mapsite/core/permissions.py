"""API permission: authenticated users read, staff write."""

from typing import TYPE_CHECKING

from rest_framework import permissions

if TYPE_CHECKING:  # importing views here would be circular (DRF loads this class at import)
    from rest_framework.request import Request
    from rest_framework.views import APIView


class IsAuthenticatedReadStaffWrite(permissions.BasePermission):
    """Any logged-in user reads; only staff write. Nothing is readable anonymously."""

    message = "Authentication is required; changing data requires staff rights."

    def has_permission(self, request: "Request", view: "APIView") -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(user.is_staff)
