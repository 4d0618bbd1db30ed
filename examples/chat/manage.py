#!/usr/bin/env python3
"""manage.py of the chat demo (run it with /usr/bin/python3, which sees
Debian's Django); clients/django (channels_presence) is put on the path."""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent / "clients" / "django")]

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
