"""Django settings for channels_presence's own tests: the database comes from
the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE); the test runner
creates test_<PGDATABASE> (and test_<PGDATABASE>_shard2, a second database
for the listener's shards test), and the app's migrations create the
extension there."""

import os

SECRET_KEY = "channels-presence-tests"
USE_TZ = True


def database(name):
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "HOST": os.environ.get("PGHOST", ""),
        "PORT": os.environ.get("PGPORT", ""),
        "USER": os.environ.get("PGUSER", ""),
    }


BASE = os.environ.get("PGDATABASE", "channels_presence")
DATABASES = {"default": database(BASE), "shard2": database(BASE + "_shard2")}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "channels_presence",
]
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CHANNELS_PRESENCE_MAX_AGE = 30
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"channels_presence": {"handlers": ["console"], "level": "ERROR"}},
}
