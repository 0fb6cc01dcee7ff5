"""A task and a view used only by the audit tests to follow a request into a worker."""
from celery import shared_task
from django.http import JsonResponse
from django.urls import path

from apps.audit.services import audit_record


@shared_task(name="tests.audit_probe")
def audit_probe(note: str) -> None:
    audit_record("tests.probe.ran", metadata={"note": note})


def enqueue(request):
    from django.db import transaction

    transaction.on_commit(lambda: audit_probe.delay("from-request"))
    return JsonResponse({"queued": True})


urlpatterns = [path("probe/", enqueue)]
