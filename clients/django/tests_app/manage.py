#!/usr/bin/env python3
"""A project written the way apps that use django-channels-presence are
(see lobby/), run against this drop-in: ./manage.py test lobby."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "legacyproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
