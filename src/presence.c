/*-------------------------------------------------------------------------
 *
 * presence.c
 *		Module entry point of the presence extension: PG_MODULE_MAGIC and
 *		the presence.* settings.
 *
 * The library is loaded on first use of any presence function; it does not
 * need shared_preload_libraries.  max_age, touch_interval and origin are
 * PGC_USERSET: any session, ALTER ROLE ... SET and ALTER DATABASE ... SET.
 * The settings that decide what events say and what a caller may store
 * (notify, notify_channel, sign_events, event_meta, max_meta_size) are
 * PGC_SUSET: an application role cannot change them for itself.
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include <limits.h>

#include "commands/async.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "event_queue.h"

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

/*
 * presence.max_meta_size: the largest meta add() and update() accept, in
 * bytes of its stored (jsonb) form.  Larger is refused with 54000.
 */
int			presence_max_meta_size = 65536;

/*
 * presence.origin: a label the events of this session's (or transaction's)
 * changes carry as "origin", so that a client that signals its own changes
 * in-process (the Django drop-in) can skip them when they come back as
 * events.  Empty: no origin key.
 */
char	   *presence_origin = NULL;

/*
 * presence.sign_events: end every payload with "ts" and an HMAC-SHA256
 * "sig" under the key presence.event_key() returns, so that listeners can
 * tell events of this extension from NOTIFYs forged by any role that can
 * connect.
 */
bool		presence_sign_events = true;

/*
 * presence.event_meta: put meta in payloads.  Off keeps it out of every
 * event ("meta":null,"meta_omitted":true): any role that can connect can
 * LISTEN, so meta that is private must not travel in events.
 */
bool		presence_event_meta = true;

/* Longest presence.origin, in bytes. */
#define ORIGIN_MAX_BYTES 255

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

/* CheckOrigin bounds presence.origin, which every event then carries. */
static bool
CheckOrigin(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && strlen(*newval) > ORIGIN_MAX_BYTES)
	{
		GUC_check_errdetail("presence.origin must be at most %d bytes.",
							ORIGIN_MAX_BYTES);
		return false;
	}
	return true;
}

/*
 * PresenceTouchIntervalMs returns the touch_interval in effect: the setting,
 * but never more than half of presence.max_age, so that a touch always keeps
 * a live connection from being pruned (a touch inside the interval does not
 * write, and what it does not write must not be old enough to prune).
 */
int
PresenceTouchIntervalMs(void)
{
	int64		half_max_age_ms = (int64) presence_max_age_s * 500;

	return (int) Min((int64) presence_touch_interval_ms, half_max_age_ms);
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
							"0 makes every touch() write; the interval in effect is at most half of presence.max_age.",
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

	DefineCustomIntVariable("presence.max_meta_size",
							"Largest meta add() and update() accept, in bytes (as stored, jsonb).",
							NULL,
							&presence_max_meta_size,
							65536, 16, 256 * 1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("presence.origin",
							   "Label carried as \"origin\" by the events of the changes this session makes.",
							   "Empty: events carry no origin.",
							   &presence_origin,
							   "",
							   PGC_USERSET,
							   0,
							   CheckOrigin, NULL, NULL);

	DefineCustomBoolVariable("presence.sign_events",
							 "End every event with a timestamp and an HMAC-SHA256 signature under presence.event_key().",
							 NULL,
							 &presence_sign_events,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("presence.event_meta",
							 "Put meta in event payloads; off sends \"meta\":null,\"meta_omitted\":true instead.",
							 NULL,
							 &presence_event_meta,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("presence.worker_idle_timeout",
							"An event worker exits after this long without events (0: never).",
							"The next event starts it again.",
							&presence_worker_idle_timeout_ms,
							300000, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	/*
	 * The worker transport needs shared memory, so it exists only when the
	 * library is preloaded; so do its PGC_POSTMASTER settings, which cannot
	 * be defined later.
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("presence.queue_size",
								"Shared memory for the events of each database waiting for the worker, and the most the worker holds.",
								"Used only with presence in shared_preload_libraries.",
								&presence_queue_size_kb,
								4096, 64, 1024 * 1024,
								PGC_POSTMASTER,
								GUC_UNIT_KB,
								NULL, NULL, NULL);

		DefineCustomIntVariable("presence.max_databases",
								"Databases whose events the workers can carry at once; others notify directly.",
								"Used only with presence in shared_preload_libraries.",
								&presence_max_databases,
								4, 1, 64,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

		EventQueueInit();
	}

	MarkGUCPrefixReserved("presence");
}
