"""manage.py presence_schedule_prune [--schedule CRON] [--unschedule]

Schedules (or replaces) the pg_cron job of the extension that prunes stale
presences and empty rooms (presence.schedule_prune), in place of
django-channels-presence's celery beat tasks.  When CHANNELS_PRESENCE_MAX_AGE
is set, stores it as presence.max_age for the job's sessions (ALTER ROLE
CURRENT_USER IN DATABASE <db> SET: the job runs as this role).  --unschedule
removes the job and that setting.  pg_cron runs in one database of the
cluster (cron.database_name): the extension's error says what to do if that
is not this one."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections
from psycopg2 import sql


class Command(BaseCommand):
    help = "Schedule the pg_cron job that prunes stale presences and empty rooms."

    def add_arguments(self, parser):
        parser.add_argument("--schedule", default="* * * * *",
                            help="cron schedule (default: every minute)")
        parser.add_argument("--unschedule", action="store_true", help="remove the job")
        parser.add_argument("--database", default="default", help="database alias")

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        max_age = getattr(settings, "CHANNELS_PRESENCE_MAX_AGE", None)
        try:
            with connection.cursor() as cursor:
                if options["unschedule"]:
                    cursor.execute("SELECT presence.unschedule_prune()")
                    removed = cursor.fetchone()[0]
                    self._store_max_age(cursor, connection, None)
                    self.stdout.write("presence-prune job %s" % ("removed" if removed else "not found"))
                    return
                cursor.execute("SELECT presence.schedule_prune(%s)", [options["schedule"]])
                jobid = cursor.fetchone()[0]
                if max_age is not None:
                    self._store_max_age(cursor, connection, "%ds" % int(max_age))
        except DatabaseError as e:
            cause = e.__cause__ or e
            hint = getattr(getattr(cause, "diag", None), "message_hint", None)
            raise CommandError("%s%s" % (str(cause).strip(), "\nHINT: %s" % hint if hint and hint not in str(cause) else ""))
        self.stdout.write("pg_cron job %s (presence-prune) scheduled '%s', max_age %s"
                          % (jobid, options["schedule"],
                             "%ss" % int(max_age) if max_age is not None else "from presence.max_age"))

    def _store_max_age(self, cursor, connection, value):
        target = sql.SQL("ALTER ROLE CURRENT_USER IN DATABASE {} ").format(
            sql.Identifier(connection.settings_dict["NAME"]))
        if value is None:
            cursor.execute(target + sql.SQL("RESET presence.max_age"))
        else:
            cursor.execute(target + sql.SQL("SET presence.max_age = {}").format(sql.Literal(value)))
