"""Gunicorn settings of the platform's server processes.

Gunicorn reads ``./gunicorn.conf.py`` when started in this directory (or pass
``-c gunicorn.conf.py``). The command line still chooses the worker class, the
threads and the address, e.g.::

    gunicorn -k gthread -w 1 --threads 200 --no-control-socket "mediation:create_app()"
"""


def post_worker_init(worker):  # noqa: ARG001 - gunicorn's hook signature
    """Once the app is loaded in a worker: settle the garbage collector."""
    from mediation.serving import tune_garbage_collector

    tune_garbage_collector()
