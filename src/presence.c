/*-------------------------------------------------------------------------
 *
 * presence.c
 *		Module entry point of the presence extension: PG_MODULE_MAGIC and
 *		the presence.* settings.
 *
 * The library is loaded on first use of any presence function; it does not
 * need shared_preload_libraries.  max_age and touch_interval are PGC_USERSET:
 * any session, ALTER ROLE ... SET and ALTER DATABASE ... SET.  notify and
 * notify_channel are PGC_SUSET (see below).
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include <limits.h>

#include "commands/async.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

/*
 * presence.max_age: how old last_seen may get before prune() deletes the
 * presence.  The seed (django-channels-presence) defaults to 60 seconds.
 * Stored in seconds; accepts PostgreSQL's duration units ('90s', '2min').
 */
int			presence_max_age_s = 60;

/*
 * presence.touch_interval: touch() skips the write while last_seen is newer
 * than this, so a touch per message costs a read, not a row version.
 * 0 means every touch writes.
 */
int			presence_touch_interval_ms = 1000;

/*
 * presence.notify: send change events at all.  Superuser-only (PGC_SUSET),
 * like presence.notify_channel: a role that may only call the API must not
 * be able to make changes nobody hears about.  PostgreSQL 15 can delegate
 * with GRANT SET ON PARAMETER presence.notify TO some_admin.
 */
bool		presence_notify = true;

/* presence.notify_channel: the channel events are sent on. */
char	   *presence_notify_channel = NULL;

void		_PG_init(void);

/* CheckNotifyChannel rejects names NOTIFY itself would refuse. */
static bool
CheckNotifyChannel(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errdetail("presence.notify_channel must not be empty.");
		return false;
	}
	if (strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errdetail("presence.notify_channel must be shorter than %d bytes.",
							NAMEDATALEN);
		return false;
	}
	return true;
}

/* _PG_init defines the settings. */
void
_PG_init(void)
{
	DefineCustomIntVariable("presence.max_age",
							"Age of last_seen after which presence.prune() deletes a presence.",
							"Used when prune() is called without max_age, as the pg_cron job does.",
							&presence_max_age_s,
							60, 1, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("presence.touch_interval",
							"touch() writes last_seen only when it is older than this.",
							"0 makes every touch() write.",
							&presence_touch_interval_ms,
							1000, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("presence.notify",
							 "Send a NOTIFY for every change of presences.",
							 NULL,
							 &presence_notify,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("presence.notify_channel",
							   "Channel on which presence events are sent.",
							   NULL,
							   &presence_notify_channel,
							   "presence",
							   PGC_SUSET,
							   0,
							   CheckNotifyChannel, NULL, NULL);

	MarkGUCPrefixReserved("presence");
}
