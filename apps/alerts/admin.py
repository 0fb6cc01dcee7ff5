"""Alerts in the admin: alerts narrowed to what the operator may see, with acknowledge/resolve
actions calling the same services as the API; channels with write-only secrets; deliveries
read-only with a retry action."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from tradepulse.core.admin import OwnedAdmin
from tradepulse.core.permissions import visible_to

from . import services
from .models import Alert, Channel, Delivery, DeliveryState
from .selectors import alerts_visible_to


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("title", "severity", "source", "state", "count", "target_repr", "first_seen", "last_seen",
                    "acknowledged_by", "resolved_by")
    list_filter = ("state", "severity", "source")
    search_fields = ("title", "message", "key", "target_repr")
    actions = ["acknowledge", "resolve"]

    def get_queryset(self, request):
        return alerts_visible_to(request.user, super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False  # alerts are raised by the platform, not typed in

    def _each(self, request, queryset, service, verb):
        done = 0
        for alert in queryset:
            try:
                service(alert=alert, user=request.user, reason=f"{verb} in the admin")
                done += 1
            except (ValidationError, PermissionDenied) as exc:
                self.message_user(request, f"{alert}: {'; '.join(getattr(exc, 'messages', [str(exc)]))}",
                                  messages.WARNING)
        self.message_user(request, f"{verb.capitalize()} {done} alert(s).")

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge(self, request, queryset):
        self._each(request, queryset, services.alert_acknowledge, "acknowledged")

    @admin.action(description="Resolve selected alerts")
    def resolve(self, request, queryset):
        self._each(request, queryset, services.alert_close, "resolved")


class ChannelForm(forms.ModelForm):
    """Secrets are write-only: the form never shows them; blank keeps the stored value."""

    url = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                          help_text="Webhook/Slack/Discord URL. Leave blank to keep the stored one.")
    bot_token = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                                help_text="Telegram bot token. Leave blank to keep the stored one.")

    class Meta:
        model = Channel
        fields = ["owner", "name", "kind", "enabled", "min_severity", "email", "url", "bot_token", "chat_id",
                  "quiet_start", "quiet_end"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in Channel.SECRET_FIELDS:
            self.initial[name] = ""

    def clean(self):
        data = super().clean()
        stored = Channel.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        probe = Channel(**{k: data.get(k) for k in services.CHANNEL_FIELDS if k in data})
        probe.owner = data.get("owner") or getattr(stored, "owner", None)
        for name in Channel.SECRET_FIELDS:  # blank keeps the stored secret
            if not data.get(name) and stored is not None:
                setattr(probe, name, getattr(stored, name))
        if probe.owner is not None:
            try:
                services.channel_validate(probe)
            except ValidationError as exc:
                raise forms.ValidationError(exc.messages) from None
        return data


@admin.register(Channel)
class ChannelAdmin(OwnedAdmin):
    form = ChannelForm
    list_display = ("name", "owner", "kind", "enabled", "min_severity", "secret_hint", "quiet_start", "quiet_end")
    list_filter = ("kind", "enabled", "min_severity")
    search_fields = ("name", "owner__username")
    actions = ["send_test"]

    def save_model(self, request, obj, form, change):
        fields = {k: form.cleaned_data.get(k) for k in services.CHANNEL_FIELDS}
        if change:
            form.instance = services.channel_update(channel=obj, reason="changed in the admin", **fields)
        else:
            form.instance = services.channel_create(owner=form.cleaned_data["owner"], reason="created in the admin",
                                                    **fields)
        obj.pk = form.instance.pk

    def delete_model(self, request, obj):
        services.channel_delete(channel=obj, reason="deleted in the admin")

    @admin.action(description="Send a test message")
    def send_test(self, request, queryset):
        for channel in queryset:
            delivery = services.channel_test(channel=channel)
            level = messages.SUCCESS if delivery.state == DeliveryState.SENT else messages.ERROR
            self.message_user(request, f"{channel}: {delivery.state}{': ' + delivery.last_error if delivery.last_error else ''}",
                              level)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "alert", "is_test", "state", "attempts", "next_attempt_at", "last_error", "sent_at")
    list_filter = ("state", "is_test", "channel__kind")
    actions = ["retry"]

    def get_queryset(self, request):
        return visible_to(request.user, super().get_queryset(request)).select_related("channel", "alert")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry selected (failed or skipped) deliveries")
    def retry(self, request, queryset):
        for delivery in queryset:
            try:
                services.delivery_retry(delivery=delivery, user=request.user, reason="retried in the admin")
            except ValidationError as exc:
                self.message_user(request, f"{delivery}: {'; '.join(exc.messages)}", messages.WARNING)
