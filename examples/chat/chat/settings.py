"""Settings of the chat demo.  The database comes from the libpq environment
(PGHOST, PGPORT, PGUSER, PGDATABASE); CHAT_MAX_AGE (seconds, default 10) is
CHANNELS_PRESENCE_MAX_AGE; CHAT_HEARTBEAT (seconds) the pages' heartbeat
period (default max_age / 3); CHAT_DB_SCHEMA, if set, keeps Django's own
tables in that schema (the e2e test shares a database with other tests);
CHAT_REDIS_URL, if set, puts the channel layer on redis (channels_redis),
which several servers need to share their groups."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent.parent
if str(REPO / "clients" / "django") not in sys.path:  # daphne imports us directly
    sys.path.insert(0, str(REPO / "clients" / "django"))

SECRET_KEY = "presence-chat-demo-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "channels_presence",
    "chat.apps.ChatConfig",
]
ROOT_URLCONF = "chat.urls"
ASGI_APPLICATION = "chat.asgi.application"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PGDATABASE", "presence_chat"),
        "HOST": os.environ.get("PGHOST", ""),
        "PORT": os.environ.get("PGPORT", ""),
        "USER": os.environ.get("PGUSER", ""),
        "OPTIONS": ({"options": "-c search_path=%s" % os.environ["CHAT_DB_SCHEMA"]}
                    if os.environ.get("CHAT_DB_SCHEMA") else {}),
    }
}
if os.environ.get("CHAT_REDIS_URL"):
    CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ["CHAT_REDIS_URL"]], "prefix": "chat"},
    }}
else:  # one server
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CHANNELS_PRESENCE_MAX_AGE = int(os.environ.get("CHAT_MAX_AGE", "10"))
CHAT_HEARTBEAT = float(os.environ.get("CHAT_HEARTBEAT", max(1.0, CHANNELS_PRESENCE_MAX_AGE / 3)))

LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"channels_presence": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
