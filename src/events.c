/*-------------------------------------------------------------------------
 *
 * events.c
 *		Change events: triggers on presence.presences that announce every
 *		committed change with NOTIFY, whoever makes it (the API, a prune,
 *		pg_cron, an admin's plain DML, a cascade from presence.rooms).
 *
 * Row-level AFTER triggers (presence_capture_change) record each change
 * (event_pending.c); the statement-level AFTER trigger (presence_send_events)
 * then sends one event per room the statement changed: the presence's own
 * event when the room saw exactly one change, one bulk_change event with
 * counts otherwise.  prune() defers sending across its batches, so a prune
 * sends one event per room, not per batch.  A TRUNCATE is announced room by
 * room from its BEFORE trigger, streaming, without holding the rows.
 *
 * The triggers on UPDATE list the columns room, channel, user_id and meta,
 * and the row trigger has a WHEN clause, so touch() (which sets only
 * last_seen) queues no trigger event and calls no function here.
 *
 * The payload format is in event_payload.c; the user_joined / user_left
 * locks in user_locks.c.
 *
 *-------------------------------------------------------------------------
 */
#include "events.h"
#include "event_queue.h"

#include "access/htup_details.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/portal.h"

/* Rows a TRUNCATE's announcement fetches at a time. */
#define TRUNCATE_FETCH 1000

/*
 * PresenceEmit sends one event on presence.notify_channel: with NOTIFY, or
 * in worker mode through this database's queue (event_queue.c).
 */
void
PresenceEmit(const char *payload, const PresenceEvent *ev)
{
	EventQueueAdd(payload, ev);
}

/*
 * EventOf describes the changes rc recorded as one event.  A single
 * addition or removal of a signed-in user gets its user_joined / user_left
 * flag when the (room, user) lock can be had without waiting; otherwise the
 * event is a bulk_change, which tells listeners to re-read the room rather
 * than state a flag that a concurrent transaction could make wrong.
 */
static void
EventOf(PresenceEvent *ev, RoomChanges *rc)
{
	int64		total = rc->added + rc->removed + rc->updated;

	memset(ev, 0, sizeof(*ev));
	ev->room = rc->room;
	ev->pruned = rc->pruned;
	ev->bulk = total > 1;
	if (!ev->bulk && rc->kind != CHANGE_UPDATED && rc->user_id != NULL)
	{
		if (PresenceUserLock(rc->room, rc->user_id, false))
			ev->flag = !PresenceUserElsewhere(rc->room, rc->user_id, rc->channel);
		else
			ev->bulk = true;
	}
	ev->added_count = rc->added;
	ev->removed_count = rc->removed;
	ev->kind = rc->kind;
	ev->channel = rc->channel;
	ev->user_id = rc->user_id;
	ev->meta = rc->meta;
	ev->meta_null = rc->meta_null;
	ev->meta_omitted = rc->meta_omitted;
}

/*
 * PresenceEventsSend sends one event per room with pending changes and
 * forgets them.  Does nothing while prune() defers, unless force is set.
 */
void
PresenceEventsSend(bool force)
{
	RoomChanges **rooms;
	MemoryContext cxt;
	MemoryContext oldcxt;
	StringInfoData buf;
	int			nrooms;

	if (!PendingAny() || (PendingDeferred() && !force))
		return;

	rooms = PendingTake(&nrooms, &cxt);
	if (presence_notify)
	{
		oldcxt = MemoryContextSwitchTo(cxt);
		initStringInfo(&buf);
		for (int i = 0; i < nrooms; i++)
		{
			PresenceEvent ev;

			if (rooms[i]->added + rooms[i]->removed + rooms[i]->updated == 0)
				continue;
			EventOf(&ev, rooms[i]);
			PresenceBuildPayload(&buf, &ev);
			PresenceEmit(buf.data, &ev);
		}
		MemoryContextSwitchTo(oldcxt);
	}
	MemoryContextDelete(cxt);
}

PG_FUNCTION_INFO_V1(presence_capture_change);

/*
 * presence_capture_change is the AFTER ROW trigger on presence.presences
 * for INSERT, DELETE and UPDATE OF room, channel, user_id, meta.  An update
 * that moves a presence (room, channel or user_id changed) counts as a
 * removal and an addition; one that changes only meta is an update.
 */
Datum
presence_capture_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	PresenceSchemaInfo *schema;
	bool		moved = false;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("presence.capture_change() must be fired AFTER ... FOR EACH ROW")));

	if (!presence_notify)
		return PointerGetDatum(NULL);

	tupdesc = trigdata->tg_relation->rd_att;
	oldtup = trigdata->tg_trigtuple;
	newtup = trigdata->tg_newtuple;
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		PendingRecord(CHANGE_ADDED, oldtup, tupdesc);
		return PointerGetDatum(NULL);
	}
	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		PendingRecord(CHANGE_REMOVED, oldtup, tupdesc);
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("presence.capture_change() must be fired for INSERT, UPDATE or DELETE")));

	schema = PresenceSchema();
	for (int k = 0; k < 3; k++)
	{
		AttrNumber	attno = k == 0 ? schema->room_att :
			k == 1 ? schema->channel_att : schema->user_id_att;
		bool		onull;
		bool		nnull;
		Datum		o = heap_getattr(oldtup, attno, tupdesc, &onull);
		Datum		n = heap_getattr(newtup, attno, tupdesc, &nnull);

		if (onull != nnull || (!onull && !PresenceTextEqual(o, n)))
			moved = true;
	}
	if (moved)
	{
		PendingRecord(CHANGE_REMOVED, oldtup, tupdesc);
		PendingRecord(CHANGE_ADDED, newtup, tupdesc);
	}
	else
		PendingRecord(CHANGE_UPDATED, newtup, tupdesc);
	return PointerGetDatum(NULL);
}

/*
 * TruncateRoom is the state of TruncateAnnounce for the room being read:
 * how many presences it has, and the first one's details.
 */
typedef struct TruncateRoom
{
	MemoryContext cxt;			/* reset per room */
	char	   *room;
	int64		count;
	PresenceEvent ev;
} TruncateRoom;

/* TruncateRoomSend sends the removal event of the room tr has read, if any. */
static void
TruncateRoomSend(TruncateRoom *tr, StringInfo buf)
{
	if (tr->room == NULL)
		return;
	tr->ev.room = tr->room;
	tr->ev.kind = CHANGE_REMOVED;
	tr->ev.bulk = tr->count > 1;
	tr->ev.removed_count = tr->count;
	/* Everything goes, and nobody can change presences meanwhile. */
	tr->ev.flag = tr->ev.user_id != NULL;
	PresenceBuildPayload(buf, &tr->ev);
	PresenceEmit(buf->data, &tr->ev);
	PendingMetaForget(tr->ev.meta);
	MemoryContextReset(tr->cxt);
	memset(&tr->ev, 0, sizeof(tr->ev));
	tr->room = NULL;
	tr->count = 0;
}

/* TruncateRoomAdd counts one presence (room, channel, user_id, meta) of the table. */
static void
TruncateRoomAdd(TruncateRoom *tr, HeapTuple row, TupleDesc desc, StringInfo buf)
{
	bool		isnull;
	char	   *room = TextDatumGetCString(heap_getattr(row, 1, desc, &isnull));
	MemoryContext oldcxt;

	if (tr->room != NULL && strcmp(tr->room, room) != 0)
		TruncateRoomSend(tr, buf);
	if (tr->count++ > 0)
	{
		pfree(room);
		return;
	}
	oldcxt = MemoryContextSwitchTo(tr->cxt);
	tr->room = pstrdup(room);
	tr->ev.channel = TextDatumGetCString(heap_getattr(row, 2, desc, &isnull));
	{
		Datum		user_id = heap_getattr(row, 3, desc, &isnull);

		tr->ev.user_id = isnull ? NULL : TextDatumGetCString(user_id);
	}
	{
		Datum		meta = heap_getattr(row, 4, desc, &tr->ev.meta_null);

		if (!tr->ev.meta_null)
			tr->ev.meta = PendingMetaCopy(meta, &tr->ev.meta_omitted);
	}
	MemoryContextSwitchTo(oldcxt);
	pfree(room);
}

/*
 * TruncateAnnounce sends, for every room, the event of its presences being
 * removed, reading the table in primary key order through a cursor so that
 * memory does not grow with the number of rows.
 */
static void
TruncateAnnounce(void)
{
	TruncateRoom tr = {0};
	StringInfoData buf;
	Portal		portal;

	tr.cxt = AllocSetContextCreate(CurrentMemoryContext, "presence truncate room",
								   ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&buf);
	SPI_connect();
	portal = PresenceOpenCursor(STMT_TRUNCATE_SCAN, NULL, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, TRUNCATE_FETCH);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
			TruncateRoomAdd(&tr, SPI_tuptable->vals[i], SPI_tuptable->tupdesc, &buf);
		SPI_freetuptable(SPI_tuptable);
	}
	TruncateRoomSend(&tr, &buf);
	SPI_cursor_close(portal);
	SPI_finish();
	MemoryContextDelete(tr.cxt);
	pfree(buf.data);
}

PG_FUNCTION_INFO_V1(presence_capture_truncate);

/*
 * presence_capture_truncate is the BEFORE TRUNCATE trigger on
 * presence.presences: it announces the removal of every presence, room by
 * room.  NOTIFY delivers at commit, so nothing is heard if the TRUNCATE
 * fails or rolls back.
 */
Datum
presence_capture_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("presence.capture_truncate() must be fired BEFORE TRUNCATE")));

	if (presence_notify)
	{
		/* Changes of earlier statements are out already; these go first. */
		PresenceEventsSend(true);
		TruncateAnnounce();
	}
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(presence_send_events);

/*
 * presence_send_events is the AFTER STATEMENT trigger on presence.presences:
 * it sends the events of the rows the statement changed.
 */
Datum
presence_send_events(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("presence.send_events() must be fired AFTER ... FOR EACH STATEMENT")));

	PresenceEventsSend(false);
	return PointerGetDatum(NULL);
}
