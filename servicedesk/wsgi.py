import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")
application = get_wsgi_application()
# Everything loaded so far (Django, the apps, URL patterns, templates' libraries) lives as long as the process:
# moved out of the garbage collector's sight, so its collections walk only what requests allocate (they were
# ~5% of a page's CPU; bench/bench_load.py).
gc.freeze()
