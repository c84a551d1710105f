# The gunicorn settings ship in the package (app/run/gunicorn_conf.py); this file keeps
# 'gunicorn --config gunicorn.conf.py' working from a checkout (deploy/ units, bench/).
from app.run.gunicorn_conf import *  # noqa: F401,F403
