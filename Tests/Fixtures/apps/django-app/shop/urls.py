import os
import sys

from django.http import HttpResponse
from django.urls import path


def home(request):
    version = "%d.%d" % sys.version_info[:2]
    return HttpResponse(f"hello from django on python {version}, {os.environ.get('SLIPWAY_RELEASE')}\n")


urlpatterns = [path("", home)]
