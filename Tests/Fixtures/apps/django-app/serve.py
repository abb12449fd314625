# A stand-in for gunicorn, from the standard library, so that the fixture needs only Django.
import os
from wsgiref.simple_server import make_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
from django.core.wsgi import get_wsgi_application

make_server("127.0.0.1", int(os.environ["PORT"]), get_wsgi_application()).serve_forever()
