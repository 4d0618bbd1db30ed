"""Django settings for channels_presence's tests: the database comes from the
libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE); the test runner
creates test_<PGDATABASE> and the app's migration creates the extension."""

import os

SECRET_KEY = "channels-presence-tests"
USE_TZ = True
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PGDATABASE", "channels_presence"),
        "HOST": os.environ.get("PGHOST", ""),
        "PORT": os.environ.get("PGPORT", ""),
        "USER": os.environ.get("PGUSER", ""),
    }
}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "channels_presence",
]
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CHANNELS_PRESENCE_MAX_AGE = 30
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
