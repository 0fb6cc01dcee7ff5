"""Dashboard page: the strategy library and your strategy configurations."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .models import Stage


@login_required
def index(request):
    return render(request, "strategies/index.html", {"stages": Stage.choices})
