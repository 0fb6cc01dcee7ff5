"""Filtering for every API list: the filter backend (scoped related ids) and shared filter types.

Kept apart from tradepulse.core.api because DRF reads DEFAULT_FILTER_BACKENDS while its generic
views are being defined; this module must not import them.
"""
from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend

from tradepulse.core.permissions import visible_to
from tradepulse.core.times import check_datetime


class _UTCDateTimeFormField(django_filters.fields.IsoDateTimeField):
    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return check_datetime(parsed).astimezone(UTC)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    """The date-time filter of every FilterSet: the same bounds and UTC as DateTimeField."""

    field_class = _UTCDateTimeFormField


class ScopedFilterBackend(DjangoFilterBackend):
    """Filters by related id see only what the user may see: another user's id is "Select a valid
    choice", exactly like an id that does not exist (no existence oracle)."""

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            for f in filterset.filters.values():
                if isinstance(f, (django_filters.ModelChoiceFilter, django_filters.ModelMultipleChoiceFilter)):
                    f.queryset = visible_to(request.user, f.get_queryset(request))
                    f.__dict__.pop("_field", None)  # a form field built earlier holds the unscoped queryset
        return filterset
