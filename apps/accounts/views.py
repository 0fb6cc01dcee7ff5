"""Login, logout, security (two-factor) and API token pages."""
from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import quotas, services
from .forms import LoginForm, PreferencesForm


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    form_class = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        device = getattr(form, "otp_device", None)
        if device is not None:
            otp_login(self.request, device)
        return response


class LogoutView(auth_views.LogoutView):
    pass


def lockout_response(request, credentials=None, *args, **kwargs):
    """What django-axes answers once a username/IP pair (or an IP, across usernames) is locked out."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    text = f"Too many failed logins. Try again in {minutes} minutes, or ask an administrator to unlock the account."
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "locked_out", "message": text,
                                       "request_id": getattr(request, "request_id", "")}}, status=429)
    form = LoginForm(request)
    return render(request, "accounts/login.html", {"form": form, "lockout": text}, status=429)


@login_required
def security(request):
    """Two-factor enrolment: show a QR code, confirm with a code; or turn it off."""
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    next_url = request.GET.get("next") or request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    context = {"confirmed": confirmed, "next": next_url}
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "confirm":
                device_id = str(request.POST.get("device", "")).strip()
                device = (TOTPDevice.objects.filter(user=user, confirmed=False, pk=int(device_id)).first()
                          if device_id.isdigit() and len(device_id) < 19 else None)
                if device is None:
                    raise ValidationError("That enrolment is no longer open: scan the new code below and try again.")
                services.totp_confirm(device=device, code=request.POST.get("code", ""))
                otp_login(request, device)
                messages.success(request, "Two-factor authentication is on.")
                return redirect(next_url or "accounts:security")
            if action == "verify" and confirmed:
                if confirmed.verify_token(request.POST.get("code", "").strip()):
                    otp_login(request, confirmed)
                    return redirect(next_url or "dashboard:home")
                messages.error(request, "That code does not match.")
            if action == "disable":
                services.totp_disable(user=user, code=request.POST.get("code", ""))
                messages.success(request, "Two-factor authentication is off.")
                return redirect("accounts:security")
        except ValidationError as exc:
            messages.error(request, "; ".join(getattr(exc, "messages", [str(exc)])))
    if not confirmed:
        device = services.totp_begin(user=user)
        image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage)
        buffer = io.BytesIO()
        image.save(buffer)
        context.update(device=device, qr_svg=buffer.getvalue().decode(), secret=_b32(device))
    return render(request, "accounts/security.html", context)


def _b32(device) -> str:
    import base64

    return base64.b32encode(device.bin_key).decode()


@login_required
def preferences(request):
    form = PreferencesForm(request.POST or None, initial={"timezone": request.user.timezone})
    if request.method == "POST" and form.is_valid():
        services.user_update_preferences(user=request.user, timezone_name=form.cleaned_data["timezone"])
        messages.success(request, f"Times are now shown in {request.user.timezone}.")
        return redirect("accounts:preferences")
    return render(request, "accounts/preferences.html", {"form": form, "quotas": quotas.limits_for(request.user)})


@login_required
def tokens(request):
    """API tokens page; the list and actions go through the API (same code as integrations use)."""
    return render(request, "accounts/tokens.html", {"max_days": settings.API_TOKEN_MAX_DAYS,
                                                    "default_days": settings.REST_KNOX["TOKEN_TTL"].days})


