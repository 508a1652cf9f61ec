"""``mlpipe serve``: a registered model's alias (``production``) over HTTP, following it.

Layers: :mod:`mlpipe.serve.scoring` turns MLflow's scoring JSON (``dataframe_split``,
``dataframe_records``, ``inputs``, ``instances``) into model input and predictions
into JSON; :mod:`mlpipe.serve.versions` downloads, loads (MLflow pyfunc) and checks
one model version; :mod:`mlpipe.serve.follower` polls the alias and swaps in a
new version only once it is loaded and has answered its check; :mod:`mlpipe.serve.app`
is the ASGI application (Starlette). Nothing here writes to MLflow or NGAS.

Needs the ``[serve]`` extra (``pip install 'mlpipe[serve]'``).
"""
