"""Tests of channels_presence against a real PostgreSQL with the extension."""
