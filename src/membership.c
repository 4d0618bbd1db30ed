/*-------------------------------------------------------------------------
 *
 * membership.c
 *		The functions that change presence: add (join), remove (leave one
 *		room), leave_all (disconnect), touch (heartbeat) and update (meta).
 *
 * Events are not sent from here: triggers on presence.presences announce
 * every change, whoever makes it.  What these functions do for events is
 * take the (room, user) locks their events' user_joined / user_left flags
 * need, before they change any row (user_locks.c).
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

/* Expands to a Datum array and a matching nulls string for PresenceExec. */
#define ARG_OR_NULL(p) ((p) != NULL ? PointerGetDatum(p) : (Datum) 0)
#define NULL_FLAG(p) ((p) != NULL ? ' ' : 'n')

/*
 * LockOrCreateRoom makes sure room exists and cannot be deleted by
 * prune_rooms() before this transaction ends.
 *
 * An existing room is locked FOR KEY SHARE, which conflicts with the FOR
 * UPDATE lock prune_rooms() takes before it deletes a room, but not with
 * other joiners.  A room this transaction inserts is invisible to others
 * until commit.  If a concurrent transaction creates the room first, or
 * prune_rooms() deletes it while we wait, we go round again.
 */
static void
LockOrCreateRoom(text *room)
{
	Datum		values[1] = {PointerGetDatum(room)};

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (PresenceExec(STMT_ROOM_LOCK, values, NULL, false, 0) > 0)
			return;
		if (PresenceExec(STMT_ROOM_CREATE, values, NULL, false, 0) > 0)
			return;
	}
}

PG_FUNCTION_INFO_V1(presence_add);

/* presence_add joins channel to room; true if a new presence was created. */
Datum
presence_add(PG_FUNCTION_ARGS)
{
	text	   *room = PresenceArgName(fcinfo, 0, "room");
	text	   *channel = PresenceArgName(fcinfo, 1, "channel");
	text	   *user_id = PresenceArgUserId(fcinfo, 2, "user_id");
	Jsonb	   *meta = PresenceArgMeta(fcinfo, 3);
	Datum		values[4];
	char		nulls[5] = "    ";
	bool		created;

	(void) PresenceSchema();
	if (user_id != NULL)
		(void) PresenceUserLock(text_to_cstring(room), text_to_cstring(user_id), true);

	values[0] = PointerGetDatum(room);
	values[1] = PointerGetDatum(channel);
	values[2] = ARG_OR_NULL(user_id);
	nulls[2] = NULL_FLAG(user_id);
	values[3] = ARG_OR_NULL(meta);
	nulls[3] = NULL_FLAG(meta);

	SPI_connect();
	LockOrCreateRoom(room);

	/*
	 * Insert, or refresh the presence that is already there.  Each statement
	 * sees what committed before it started, so the loop ends: a concurrent
	 * insert makes ours conflict and the refresh find it; a concurrent
	 * remove between the two makes the next insert succeed.
	 */
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (PresenceExec(STMT_PRESENCE_INSERT, values, nulls, false, 0) > 0)
		{
			created = true;
			break;
		}
		if (PresenceExec(meta != NULL ? STMT_PRESENCE_REJOIN_META : STMT_PRESENCE_REJOIN,
						 values, nulls, false, 0) > 0)
		{
			created = false;
			break;
		}

		/* Not refreshed: it belongs to another user, or it was just removed. */
		if (PresenceExec(STMT_PRESENCE_OWNER, values, nulls, false, 0) > 0)
		{
			bool		isnull;
			Datum		owner = SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull);
			char	   *owner_str = isnull ? pstrdup("NULL (anonymous)") :
				psprintf("\"%s\"", TextDatumGetCString(owner));
			char	   *user_str = user_id == NULL ? pstrdup("NULL (anonymous)") :
				psprintf("\"%s\"", text_to_cstring(user_id));

			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("channel \"%s\" is already in room \"%s\" as another user",
							text_to_cstring(channel), text_to_cstring(room)),
					 errdetail("The presence belongs to user_id %s, not %s.",
							   owner_str, user_str),
					 errhint("A channel joins a room as one user; call presence.remove() first to join as another.")));
		}
	}

	SPI_finish();
	PG_RETURN_BOOL(created);
}

PG_FUNCTION_INFO_V1(presence_remove);

/* presence_remove takes channel out of room; true if it was there. */
Datum
presence_remove(PG_FUNCTION_ARGS)
{
	text	   *room = PresenceArgName(fcinfo, 0, "room");
	text	   *channel = PresenceArgName(fcinfo, 1, "channel");
	Datum		values[2] = {PointerGetDatum(room), PointerGetDatum(channel)};
	char	   *user_id;
	int			n;

	if (PresenceOwner(room, channel, &user_id) && user_id != NULL)
		(void) PresenceUserLock(text_to_cstring(room), user_id, true);

	SPI_connect();
	n = PresenceExec(STMT_REMOVE, values, NULL, false, 0);
	SPI_finish();
	PG_RETURN_BOOL(n > 0);
}

PG_FUNCTION_INFO_V1(presence_leave_all);

/*
 * presence_leave_all takes channel out of every room; number removed.  The
 * (room, user) locks of its presences are taken first, in room order.
 */
Datum
presence_leave_all(PG_FUNCTION_ARGS)
{
	text	   *channel = PresenceArgName(fcinfo, 0, "channel");
	Datum		values[1] = {PointerGetDatum(channel)};
	ListCell   *lc;
	int			n;

	foreach(lc, PresenceChannelMemberships(channel))
	{
		PresenceMembership *m = lfirst(lc);

		if (m->user_id != NULL)
			(void) PresenceUserLock(m->room, m->user_id, true);
	}

	SPI_connect();
	(void) PresenceExec(STMT_LEAVE_ALL_LOCK, values, NULL, false, 0);
	n = PresenceExec(STMT_LEAVE_ALL, values, NULL, false, 0);
	SPI_finish();
	PG_RETURN_INT32(n);
}

PG_FUNCTION_INFO_V1(presence_touch);

/*
 * presence_touch refreshes last_seen of the channel's presences and returns
 * how many it has (0: the channel was pruned and should re-join).
 *
 * Inside the touch_interval in effect the presences are only read; a row
 * version is written only for presences whose last_seen is older.  The
 * count is taken after the write, with a snapshot of this moment: a
 * concurrent touch that refreshed the rows first, or a prune that deleted
 * them while we waited, is counted as it committed.  A heartbeat that
 * cannot write (a read-only transaction, a hot standby) is an error every
 * time, never a count the app would take for a refreshed presence.
 */
Datum
presence_touch(PG_FUNCTION_ARGS)
{
	text	   *channel = PresenceArgName(fcinfo, 0, "channel");
	Datum		values[2] = {PointerGetDatum(channel), (Datum) 0};
	int			interval_ms = PresenceTouchIntervalMs();
	TimestampTz cutoff;
	int			count;
	int			stale;

	PreventCommandIfReadOnly("presence.touch()");
	PreventCommandDuringRecovery("presence.touch()");

	/*
	 * Every touch writes: the UPDATE's own snapshot (a new one, SPI takes it)
	 * and its recheck of rows updated meanwhile make its count the answer.
	 */
	if (interval_ms == 0)
	{
		SPI_connect();
		count = PresenceExec(STMT_TOUCH_WRITE_ALL, values, NULL, false, 0);
		SPI_finish();
		PG_RETURN_INT32(count);
	}

	/* The common case: a read, no SPI, no row version. */
	cutoff = GetCurrentTransactionStartTimestamp() - (TimestampTz) interval_ms * 1000;
	count = PresenceTouchRead(channel, cutoff, &stale, true);
	if (stale == 0)
		PG_RETURN_INT32(count);

	values[1] = TimestampTzGetDatum(cutoff);
	SPI_connect();
	(void) PresenceExec(STMT_TOUCH_WRITE, values, NULL, false, 0);
	SPI_finish();
	PG_RETURN_INT32(PresenceChannelCount(channel));
}

PG_FUNCTION_INFO_V1(presence_update);

/*
 * presence_update replaces the meta of one presence and refreshes its
 * last_seen (a state change is a sign of life); true if the presence exists.
 * A NULL meta clears it.
 */
Datum
presence_update(PG_FUNCTION_ARGS)
{
	Datum		values[3];
	char		nulls[4] = "   ";
	int			n;

	Jsonb	   *meta;

	values[0] = PointerGetDatum(PresenceArgName(fcinfo, 0, "room"));
	values[1] = PointerGetDatum(PresenceArgName(fcinfo, 1, "channel"));
	meta = PresenceArgMeta(fcinfo, 2);
	values[2] = meta != NULL ? PointerGetDatum(meta) : (Datum) 0;
	nulls[2] = meta != NULL ? ' ' : 'n';
	(void) PresenceSchema();

	SPI_connect();
	n = PresenceExec(STMT_UPDATE, values, nulls, false, 0);
	SPI_finish();
	PG_RETURN_BOOL(n > 0);
}
