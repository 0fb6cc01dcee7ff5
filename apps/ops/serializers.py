"""The one shape of a backup for the API and the live `ops.backup.updated` events."""
from __future__ import annotations

from rest_framework import serializers

from .models import Backup


class BackupSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    size_bytes = serializers.IntegerField(read_only=True, allow_null=True, help_text="File size in bytes.")

    class Meta:
        model = Backup
        fields = ["id", "name", "kind", "engine", "state", "size_bytes", "sha256", "error", "created_at", "started_at",
                  "finished_at", "requested_by", "restored_at"]
        read_only_fields = fields
