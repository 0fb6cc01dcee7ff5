from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django_otp import devices_for_user


class LoginForm(AuthenticationForm):
    """Username and password, plus a TOTP code for users who enabled two-factor."""

    otp_token = forms.CharField(
        label="Authenticator code", required=False, max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="Only if you turned on two-factor authentication.",
    )

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        devices = [d for d in devices_for_user(user, confirmed=True)] if user else []
        if devices:
            token = (cleaned.get("otp_token") or "").strip()
            device = next((d for d in devices if token and d.verify_token(token)), None)
            if device is None:
                # Count it as a failed login so throttling applies to code guessing too.
                user_login_failed.send(sender=type(self), credentials={"username": user.get_username()},
                                       request=self.request)
                raise forms.ValidationError("Enter the current code from your authenticator app.", code="otp")
            self.otp_device = device
        return cleaned


class PreferencesForm(forms.Form):
    timezone = forms.ChoiceField(choices=[(z, z) for z in sorted(zoneinfo.available_timezones())])
