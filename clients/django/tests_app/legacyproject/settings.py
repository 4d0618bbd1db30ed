"""Settings of the test project.  The database comes from the libpq
environment (PGHOST, PGPORT, PGUSER, PGDATABASE); LOBBY_REDIS_URL, if set,
puts the channel layer on redis (channels_redis), as deployments with
several servers do; LOBBY_DB_SCHEMA keeps the project's tables in a schema
of their own (the integration test shares a database); LOBBY_LISTEN_*
(HOST, PORT) give the listener a direct connection when the default one
goes through pgbouncer."""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
DROP_IN = HERE.parent  # clients/django, when the package is not pip-installed
try:
    import channels_presence  # noqa: F401
except ImportError:
    sys.path.insert(0, str(DROP_IN))

SECRET_KEY = "legacy-project-tests-only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "channels",
    # How projects that worked around the original's apps.py name it.
    "channels_presence.apps.RoomsConfig",
    "lobby",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "legacyproject.urls"
ASGI_APPLICATION = "legacyproject.asgi.application"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]


def database(host, port):
    options = {}
    if os.environ.get("LOBBY_DB_SCHEMA"):
        options["options"] = "-c search_path=%s" % os.environ["LOBBY_DB_SCHEMA"]
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PGDATABASE", "lobby"),
        "HOST": host,
        "PORT": port,
        "USER": os.environ.get("PGUSER", ""),
        "OPTIONS": options,
    }


DATABASES = {"default": database(os.environ.get("PGHOST", ""), os.environ.get("PGPORT", ""))}
if os.environ.get("LOBBY_LISTEN_PORT"):
    # Behind pgbouncer in transaction pooling: the listener's LISTEN and its
    # advisory lock need a session of their own, a direct connection.
    DATABASES["direct"] = database(os.environ.get("LOBBY_LISTEN_HOST", ""),
                                   os.environ["LOBBY_LISTEN_PORT"])
    DATABASES["direct"]["TEST"] = {"MIRROR": "default"}
    CHANNELS_PRESENCE_LISTEN = ["direct"]
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True

if os.environ.get("LOBBY_REDIS_URL"):
    CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ["LOBBY_REDIS_URL"]], "prefix": "lobby"},
    }}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CHANNELS_PRESENCE_MAX_AGE = int(os.environ.get("LOBBY_MAX_AGE", "60"))

LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"channels_presence": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
