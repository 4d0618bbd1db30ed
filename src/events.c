/*-------------------------------------------------------------------------
 *
 * events.c
 *		Change events: triggers on presence.presences that announce every
 *		committed change with NOTIFY, whoever makes it (the API, a prune,
 *		pg_cron, an admin's plain DML, a cascade from presence.rooms).
 *
 * Row-level AFTER triggers (presence_capture_change) record each change in
 * a per-transaction table of rooms; the statement-level AFTER trigger
 * (presence_send_events) then sends one event per room the statement
 * changed: the presence's own event when the room saw exactly one change,
 * one bulk_change event with counts otherwise.  prune() defers sending
 * across its batches, so a prune sends one event per room, not per batch.
 *
 * The triggers on UPDATE list the columns room, channel, user_id and meta,
 * and the row trigger has a WHEN clause, so touch() (which sets only
 * last_seen) queues no trigger event and calls no function here.
 *
 * Payload format (DESIGN.md section 6), keys always in this order:
 *   {"room":..,"added":{..}|null,"removed":{..}|null,"updated":{..}|null,
 *    "bulk_change":false}
 *   {"room":..,"added":null,"removed":null,"updated":null,
 *    "bulk_change":true,"added_count":N,"removed_count":M}
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

/* NOTIFY refuses payloads of this many bytes or more (async.c). */
#define NOTIFY_PAYLOAD_LIMIT 8000

/*
 * While prune() defers sending, the table of rooms is still sent early once
 * it holds this many rooms, which bounds its memory (a few MB).
 */
#define DEFERRED_ROOMS_LIMIT 65536

/*
 * locktag_field4 of the per (room, user) locks that make user_joined and
 * user_left exact; pg_advisory_lock() uses 1 and 2, so ours never collide
 * with an application's advisory locks.  Visible in pg_locks as an advisory
 * lock with objsubid 20562.
 */
#define PRESENCE_USER_LOCK_FIELD4 0x5052

/*
 * Only a statement that changes at most this many rooms takes those locks
 * (every API call but a leave_all of a channel in very many rooms): each is
 * held to commit, and a prune or bulk DELETE of thousands of rooms would
 * exhaust the shared lock table.  Larger sends compute the flags without
 * the lock, exact for one writer at a time.
 */
#define USER_LOCK_MAX_ROOMS 16

typedef enum ChangeKind
{
	CHANGE_ADDED,
	CHANGE_REMOVED,
	CHANGE_UPDATED
} ChangeKind;

/* What one statement (or one prune) did to one room. */
typedef struct RoomChanges
{
	char	   *room;			/* hash key: points at a string of our own */
	int64		added;
	int64		removed;
	int64		updated;
	/* The first change, kept while it is the only one. */
	ChangeKind	kind;
	char	   *channel;
	char	   *user_id;		/* NULL: anonymous */
	Jsonb	   *meta;			/* NULL: SQL NULL */
} RoomChanges;

/* Changes not yet sent; lives in TopTransactionContext, reset when sent. */
static MemoryContext changes_cxt = NULL;
static HTAB *changes = NULL;

/* > 0 while prune() keeps events for the end of its run. */
static int	defer_depth = 0;

/* The subtransactions in which the table and the deferral began. */
static SubTransactionId changes_subid = InvalidSubTransactionId;
static SubTransactionId defer_subid = InvalidSubTransactionId;

static bool callbacks_registered = false;

/* RoomKeyHash hashes the room name a key points at. */
static uint32
RoomKeyHash(const void *key, Size keysize)
{
	const char *room = *(char *const *) key;

	return hash_bytes((const unsigned char *) room, strlen(room));
}

/* RoomKeyMatch compares the room names two keys point at. */
static int
RoomKeyMatch(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(char *const *) key1, *(char *const *) key2);
}

/* ForgetChanges drops whatever was recorded and not sent. */
static void
ForgetChanges(void)
{
	if (changes_cxt != NULL)
		MemoryContextDelete(changes_cxt);
	changes_cxt = NULL;
	changes = NULL;
}

/*
 * EventsXactCallback forgets recorded changes and any deferral when the
 * transaction ends (the memory goes with TopTransactionContext).  Changes
 * are sent at the end of the statement that made them, so nothing is
 * pending here unless a statement or a prune failed.
 */
static void
EventsXactCallback(XactEvent event, void *arg)
{
	/* The context is a child of TopTransactionContext: already being freed. */
	changes_cxt = NULL;
	changes = NULL;
	defer_depth = 0;
}

/*
 * EventsSubXactCallback forgets, when a subtransaction rolls back, the
 * changes recorded and the deferral begun inside it; those of enclosing
 * levels stay.
 */
static void
EventsSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	if (changes != NULL && changes_subid >= mySubid)
		ForgetChanges();
	if (defer_depth > 0 && defer_subid >= mySubid)
		defer_depth = 0;
}

/* RegisterCallbacks makes sure the callbacks above are registered. */
static void
RegisterCallbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(EventsXactCallback, NULL);
	RegisterSubXactCallback(EventsSubXactCallback, NULL);
	callbacks_registered = true;
}

/* ChangesTable returns the table of pending changes, creating it if needed. */
static HTAB *
ChangesTable(void)
{
	HASHCTL		ctl;

	if (changes != NULL)
		return changes;

	RegisterCallbacks();
	changes_subid = GetCurrentSubTransactionId();
	changes_cxt = AllocSetContextCreate(TopTransactionContext,
										"presence pending events",
										ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(RoomChanges);
	ctl.hash = RoomKeyHash;
	ctl.match = RoomKeyMatch;
	ctl.hcxt = changes_cxt;
	changes = hash_create("presence pending events", 64, &ctl,
						  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	return changes;
}

/* GetText returns column attname of tuple as a C string, NULL if null. */
static char *
GetText(HeapTuple tuple, TupleDesc tupdesc, const char *attname)
{
	int			attno = SPI_fnumber(tupdesc, attname);
	bool		isnull;
	Datum		d;

	if (attno <= 0)
		elog(ERROR, "presence: column \"%s\" not found in presence.presences", attname);
	d = heap_getattr(tuple, attno, tupdesc, &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * RecordChange notes that a presence of room was added, removed or updated.
 * Details are kept only for a room's first change: a second one makes the
 * room's event a bulk_change, which carries counts only.
 */
static void
RecordChange(ChangeKind kind, HeapTuple tuple, TupleDesc tupdesc)
{
	MemoryContext oldcxt;
	RoomChanges *rc;
	char	   *room;
	bool		found;

	(void) ChangesTable();
	oldcxt = MemoryContextSwitchTo(changes_cxt);

	room = GetText(tuple, tupdesc, "room");
	if (room == NULL)
		elog(ERROR, "presence: presence without a room");

	rc = hash_search(changes, &room, HASH_ENTER, &found);
	if (!found)
	{
		rc->room = room;
		rc->added = rc->removed = rc->updated = 0;
		rc->kind = kind;
		rc->channel = GetText(tuple, tupdesc, "channel");
		rc->user_id = GetText(tuple, tupdesc, "user_id");
		rc->meta = NULL;
		{
			int			attno = SPI_fnumber(tupdesc, "meta");
			bool		isnull;
			Datum		d = heap_getattr(tuple, attno, tupdesc, &isnull);

			if (!isnull)
				rc->meta = DatumGetJsonbPCopy(d);
		}
	}
	else
	{
		pfree(room);
		/* No longer a single change: details are not needed any more. */
		if (rc->channel != NULL)
		{
			pfree(rc->channel);
			rc->channel = NULL;
		}
		if (rc->user_id != NULL)
		{
			pfree(rc->user_id);
			rc->user_id = NULL;
		}
		if (rc->meta != NULL)
		{
			pfree(rc->meta);
			rc->meta = NULL;
		}
	}

	switch (kind)
	{
		case CHANGE_ADDED:
			rc->added++;
			break;
		case CHANGE_REMOVED:
			rc->removed++;
			break;
		case CHANGE_UPDATED:
			rc->updated++;
			break;
	}
	MemoryContextSwitchTo(oldcxt);
}

/* CompareRooms orders pending rooms by name, for a stable lock and event order. */
static int
CompareRooms(const void *a, const void *b)
{
	return strcmp((*(RoomChanges *const *) a)->room,
				  (*(RoomChanges *const *) b)->room);
}

/*
 * UserElsewhere tells whether user_id has a presence in room other than
 * channel.  With lock, it first takes the (room, user) lock that orders this
 * check with the same check in concurrent transactions: whoever gets the
 * lock second waits for the first to commit and then sees its change.
 */
static bool
UserElsewhere(const char *room, const char *user_id, const char *channel,
			  bool lock)
{
	LOCKTAG		tag;

	if (lock)
	{
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId,
							 hash_bytes((const unsigned char *) room, strlen(room)),
							 hash_bytes((const unsigned char *) user_id, strlen(user_id)),
							 PRESENCE_USER_LOCK_FIELD4);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}

	return PresenceUserElsewhere(room, user_id, channel);
}

/* AppendJsonString appends str as a JSON string, or null. */
static void
AppendJsonString(StringInfo buf, const char *str)
{
	if (str == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, str);
}

/*
 * AppendJsonScalar appends one scalar of a jsonb value.
 */
static void
AppendJsonScalar(StringInfo buf, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			appendStringInfoString(buf, "null");
			break;
		case jbvBool:
			appendStringInfoString(buf, v->val.boolean ? "true" : "false");
			break;
		case jbvNumeric:
			appendStringInfoString(buf,
								   DatumGetCString(DirectFunctionCall1(numeric_out,
																	   NumericGetDatum(v->val.numeric))));
			break;
		case jbvString:
			{
				char	   *str = pnstrdup(v->val.string.val, v->val.string.len);

				escape_json(buf, str);
				pfree(str);
			}
			break;
		default:
			elog(ERROR, "presence: unexpected jsonb value type %d", (int) v->type);
	}
}

/*
 * AppendJsonbCompact appends jb as JSON without the blanks jsonb's output
 * function puts after ':' and ',', so meta looks like the rest of the payload
 * and takes fewer of its 8000 bytes.
 */
static void
AppendJsonbCompact(StringInfo buf, Jsonb *jb)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbIteratorToken tok;
	JsonbValue	v;
	bool		need_comma = false;
	bool		raw_scalar = JB_ROOT_IS_SCALAR(jb);
	int			depth = 0;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_ARRAY:
			case WJB_BEGIN_OBJECT:
				/* A scalar root is stored as a one-element array: skip it. */
				if (!(raw_scalar && depth == 0))
				{
					if (need_comma)
						appendStringInfoChar(buf, ',');
					appendStringInfoChar(buf, tok == WJB_BEGIN_ARRAY ? '[' : '{');
				}
				need_comma = false;
				depth++;
				break;
			case WJB_END_ARRAY:
			case WJB_END_OBJECT:
				depth--;
				if (!(raw_scalar && depth == 0))
					appendStringInfoChar(buf, tok == WJB_END_ARRAY ? ']' : '}');
				need_comma = true;
				break;
			case WJB_KEY:
				if (need_comma)
					appendStringInfoChar(buf, ',');
				AppendJsonScalar(buf, &v);
				appendStringInfoChar(buf, ':');
				need_comma = false;
				break;
			case WJB_VALUE:
			case WJB_ELEM:
				if (need_comma)
					appendStringInfoChar(buf, ',');
				AppendJsonScalar(buf, &v);
				need_comma = true;
				break;
			default:
				break;
		}
	}
}

/*
 * AppendPresence appends the object describing the single change of rc.
 * meta is left out (meta_omitted) when with_meta is false.  flag is the
 * name of the user_joined / user_left key, or NULL for updates.
 */
static void
AppendPresence(StringInfo buf, RoomChanges *rc, bool with_meta,
			   const char *flag, bool flag_value)
{
	appendStringInfoString(buf, "{\"channel\":");
	AppendJsonString(buf, rc->channel);
	appendStringInfoString(buf, ",\"user_id\":");
	AppendJsonString(buf, rc->user_id);
	appendStringInfoString(buf, ",\"meta\":");
	if (rc->meta == NULL)
		appendStringInfoString(buf, "null");
	else if (with_meta)
		AppendJsonbCompact(buf, rc->meta);
	else
		appendStringInfoString(buf, "null,\"meta_omitted\":true");
	if (flag != NULL)
		appendStringInfo(buf, ",\"%s\":%s", flag, flag_value ? "true" : "false");
	appendStringInfoChar(buf, '}');
}

/* BuildPayload writes the event of rc into buf. */
static void
BuildPayload(StringInfo buf, RoomChanges *rc, bool with_meta, bool flag_value)
{
	int64		total = rc->added + rc->removed + rc->updated;

	resetStringInfo(buf);
	appendStringInfoString(buf, "{\"room\":");
	escape_json(buf, rc->room);

	if (total > 1)
	{
		appendStringInfo(buf,
						 ",\"added\":null,\"removed\":null,\"updated\":null,"
						 "\"bulk_change\":true,\"added_count\":" INT64_FORMAT
						 ",\"removed_count\":" INT64_FORMAT "}",
						 rc->added, rc->removed);
		return;
	}

	appendStringInfoString(buf, ",\"added\":");
	if (rc->kind == CHANGE_ADDED)
		AppendPresence(buf, rc, with_meta, "user_joined", flag_value);
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ",\"removed\":");
	if (rc->kind == CHANGE_REMOVED)
		AppendPresence(buf, rc, with_meta, "user_left", flag_value);
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ",\"updated\":");
	if (rc->kind == CHANGE_UPDATED)
		AppendPresence(buf, rc, with_meta, NULL, false);
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ",\"bulk_change\":false}");
}

/*
 * PresenceEventsSend sends one NOTIFY per room with pending changes and
 * forgets them.  Does nothing while prune() defers, unless force is set.
 */
void
PresenceEventsSend(bool force)
{
	HASH_SEQ_STATUS seq;
	RoomChanges **rooms;
	RoomChanges *rc;
	long		nrooms;
	long		i;
	StringInfoData buf;
	MemoryContext oldcxt;

	if (changes == NULL)
		return;
	if (defer_depth > 0 && !force)
		return;

	nrooms = hash_get_num_entries(changes);
	if (nrooms == 0 || !presence_notify)
	{
		ForgetChanges();
		return;
	}

	oldcxt = MemoryContextSwitchTo(changes_cxt);

	rooms = palloc(nrooms * sizeof(RoomChanges *));
	i = 0;
	hash_seq_init(&seq, changes);
	while ((rc = hash_seq_search(&seq)) != NULL)
		rooms[i++] = rc;
	qsort(rooms, nrooms, sizeof(RoomChanges *), CompareRooms);

	initStringInfo(&buf);
	for (i = 0; i < nrooms; i++)
	{
		bool		flag = false;

		rc = rooms[i];
		if (rc->added + rc->removed + rc->updated == 0)
			continue;
		if (rc->added + rc->removed + rc->updated == 1 &&
			rc->kind != CHANGE_UPDATED && rc->user_id != NULL)
			flag = !UserElsewhere(rc->room, rc->user_id, rc->channel,
								  nrooms <= USER_LOCK_MAX_ROOMS);

		BuildPayload(&buf, rc, true, flag);
		if (buf.len >= NOTIFY_PAYLOAD_LIMIT)
			BuildPayload(&buf, rc, false, flag);
		/* Names are at most 255 characters, so this cannot happen. */
		if (buf.len >= NOTIFY_PAYLOAD_LIMIT)
			elog(ERROR, "presence: event payload of %d bytes is too long", buf.len);

		Async_Notify(presence_notify_channel, buf.data);
	}

	MemoryContextSwitchTo(oldcxt);
	ForgetChanges();
}

/* PresenceEventsDefer keeps events from being sent until PresenceEventsResume. */
void
PresenceEventsDefer(void)
{
	RegisterCallbacks();
	if (defer_depth++ == 0)
		defer_subid = GetCurrentSubTransactionId();
}

/* PresenceEventsResume ends a PresenceEventsDefer and sends what is pending. */
void
PresenceEventsResume(void)
{
	if (defer_depth > 0)
		defer_depth--;
	PresenceEventsSend(false);
}

/* PresenceEventsSendIfLarge sends early when deferred events pile up. */
void
PresenceEventsSendIfLarge(void)
{
	if (changes != NULL && hash_get_num_entries(changes) >= DEFERRED_ROOMS_LIMIT)
		PresenceEventsSend(true);
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

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("presence.capture_change() was not called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("presence.capture_change() must be fired AFTER ... FOR EACH ROW")));

	if (!presence_notify)
		return PointerGetDatum(NULL);

	tupdesc = trigdata->tg_relation->rd_att;
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		RecordChange(CHANGE_ADDED, trigdata->tg_trigtuple, tupdesc);
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		RecordChange(CHANGE_REMOVED, trigdata->tg_trigtuple, tupdesc);
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	oldtup = trigdata->tg_trigtuple;
		HeapTuple	newtup = trigdata->tg_newtuple;
		bool		moved = false;
		const char *keys[] = {"room", "channel", "user_id"};

		for (int k = 0; k < lengthof(keys); k++)
		{
			char	   *o = GetText(oldtup, tupdesc, keys[k]);
			char	   *n = GetText(newtup, tupdesc, keys[k]);

			if ((o == NULL) != (n == NULL) || (o != NULL && strcmp(o, n) != 0))
				moved = true;
		}
		if (moved)
		{
			RecordChange(CHANGE_REMOVED, oldtup, tupdesc);
			RecordChange(CHANGE_ADDED, newtup, tupdesc);
		}
		else
			RecordChange(CHANGE_UPDATED, newtup, tupdesc);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("presence.capture_change() must be fired for INSERT, UPDATE or DELETE")));

	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(presence_capture_truncate);

/*
 * presence_capture_truncate is the BEFORE TRUNCATE trigger on
 * presence.presences: it records every presence as removed, so that the
 * AFTER TRUNCATE trigger announces the truncation room by room.
 */
Datum
presence_capture_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	uint64		n;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("presence.capture_truncate() must be fired BEFORE TRUNCATE")));

	if (!presence_notify)
		return PointerGetDatum(NULL);

	SPI_connect();
	n = PresenceExec(STMT_ALL_PRESENCES, NULL, NULL, false, 0);
	for (uint64 i = 0; i < n; i++)
		RecordChange(CHANGE_REMOVED, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	SPI_finish();

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
