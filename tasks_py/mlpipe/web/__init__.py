"""The public, read-only results site: an ASGI application (Starlette).

Layers: :mod:`mlpipe.web.catalog` reads MLflow (the tracking server and the
registry, with the account in ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``) and
the published files through the read cache; :mod:`mlpipe.web.plots` renders
PNG/SVG figures; :mod:`mlpipe.web.pages` renders HTML; :mod:`mlpipe.web.app`
wires routes, JSON forms and the method/header policy. Only what the
configured experiments and registered models hold is served: a file is
downloadable only when it is an output of a finished run in one of those
experiments. Nothing here writes to MLflow or NGAS.

Needs the ``[web]`` extra (``pip install 'mlpipe[web]'``).
"""
