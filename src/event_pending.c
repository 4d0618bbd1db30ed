/*-------------------------------------------------------------------------
 *
 * event_pending.c
 *		The changes a statement (or a prune) made, per room, until events.c
 *		sends them; and the per-transaction memory of what was sent.
 *
 * Row triggers record each change here; a room keeps counts, and the
 * details of its first change only while it is the only one (a second makes
 * the room's event a bulk_change, which carries counts).  The table lives
 * in a child of TopTransactionContext and is forgotten at transaction end,
 * or when the subtransaction that began it rolls back.
 *
 * Memory is bounded whatever the callers do:
 *  - meta is copied only when it can fit a payload (NOTIFY_PAYLOAD_LIMIT)
 *    and while the copies of the pending rooms stay under PENDING_META_BYTES;
 *    otherwise the event says "meta_omitted" and the listener reads meta
 *    from members().  A meta that is not copied is never detoasted.
 *  - when the table itself passes PENDING_FLUSH_BYTES (a prune across very
 *    many rooms, a bulk DELETE), what is pending is sent at once: a room
 *    may then get two events for one statement, in order.
 * The rest grows with the events a transaction sends, as NOTIFY's own
 * queue does: a hash (8 bytes) per payload, to tell repeats apart.
 *
 *-------------------------------------------------------------------------
 */
#include "events.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

/* Copies of meta kept for pending events, at most (bytes). */
#define PENDING_META_BYTES (1024 * 1024)

/* Pending rooms are sent early once their table takes this much memory. */
#define PENDING_FLUSH_BYTES (4 * 1024 * 1024)

/* Changes not yet sent. */
static MemoryContext changes_cxt = NULL;
static HTAB *changes = NULL;
static Size meta_bytes = 0;

/* > 0 while prune() keeps events for the end of its run. */
static int	defer_depth = 0;

/* The subtransactions in which the table and the deferral began. */
static SubTransactionId changes_subid = InvalidSubTransactionId;
static SubTransactionId defer_subid = InvalidSubTransactionId;

/* Hashes of the payloads this transaction sent, and how many it sent. */
static HTAB *sent = NULL;
static int	sent_count = 0;

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
	meta_bytes = 0;
}

/*
 * EventsXactCallback forgets everything when the transaction ends (the
 * memory goes with TopTransactionContext).  Changes are sent at the end of
 * the statement that made them, so nothing is pending here unless a
 * statement or a prune failed.
 */
static void
EventsXactCallback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	changes_cxt = NULL;
	changes = NULL;
	meta_bytes = 0;
	defer_depth = 0;
	sent = NULL;
	sent_count = 0;
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

/* ColumnText returns column attno of tuple as a C string, NULL if null. */
static char *
ColumnText(HeapTuple tuple, TupleDesc tupdesc, AttrNumber attno)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, attno, tupdesc, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * PendingMetaCopy returns a copy of meta, in the current memory context, if
 * it can fit a payload and the budget of copies allows it; otherwise NULL
 * with omitted set.  The size is read from the datum's header, so a meta
 * that is not copied is never fetched or decompressed.
 */
Jsonb *
PendingMetaCopy(Datum meta, bool *omitted)
{
	Size		size = toast_raw_datum_size(meta);

	*omitted = size >= NOTIFY_PAYLOAD_LIMIT || !presence_event_meta ||
		meta_bytes + size > PENDING_META_BYTES;
	if (*omitted)
		return NULL;
	meta_bytes += size;
	return DatumGetJsonbPCopy(meta);
}

/* ForgetDetails drops the single-change details of rc: it is a bulk change now. */
static void
ForgetDetails(RoomChanges *rc)
{
	if (rc->channel != NULL)
		pfree(rc->channel);
	if (rc->user_id != NULL)
		pfree(rc->user_id);
	if (rc->meta != NULL)
	{
		meta_bytes -= Min(meta_bytes, VARSIZE(rc->meta));
		pfree(rc->meta);
	}
	rc->channel = rc->user_id = NULL;
	rc->meta = NULL;
}

/* KeepDetails keeps the details of rc's first (so far only) change. */
static void
KeepDetails(RoomChanges *rc, ChangeKind kind, HeapTuple tuple, TupleDesc tupdesc)
{
	PresenceSchemaInfo *schema = PresenceSchema();
	bool		isnull;
	Datum		meta;

	rc->kind = kind;
	rc->channel = ColumnText(tuple, tupdesc, schema->channel_att);
	rc->user_id = ColumnText(tuple, tupdesc, schema->user_id_att);
	meta = heap_getattr(tuple, schema->meta_att, tupdesc, &isnull);
	rc->meta_null = isnull;
	rc->meta_omitted = false;
	rc->meta = isnull ? NULL : PendingMetaCopy(meta, &rc->meta_omitted);
}

/*
 * PendingRecord notes that a presence (tuple, a row of presence.presences)
 * was added, removed or updated.
 */
void
PendingRecord(ChangeKind kind, HeapTuple tuple, TupleDesc tupdesc)
{
	MemoryContext oldcxt;
	RoomChanges *rc;
	char	   *room;
	bool		found;

	(void) ChangesTable();
	oldcxt = MemoryContextSwitchTo(changes_cxt);

	room = ColumnText(tuple, tupdesc, PresenceSchema()->room_att);
	if (room == NULL)
		elog(ERROR, "presence: presence without a room");

	rc = hash_search(changes, &room, HASH_ENTER, &found);
	if (!found)
	{
		rc->room = room;
		rc->added = rc->removed = rc->updated = 0;
		rc->pruned = defer_depth > 0;
		KeepDetails(rc, kind, tuple, tupdesc);
	}
	else
	{
		pfree(room);
		ForgetDetails(rc);
	}

	if (kind == CHANGE_ADDED)
		rc->added++;
	else if (kind == CHANGE_REMOVED)
		rc->removed++;
	else
		rc->updated++;
	MemoryContextSwitchTo(oldcxt);

	if (MemoryContextMemAllocated(changes_cxt, true) > PENDING_FLUSH_BYTES)
		PresenceEventsSend(true);
}

/* PendingAny tells whether changes wait to be sent. */
bool
PendingAny(void)
{
	return changes != NULL;
}

/* PendingDeferred tells whether prune() holds events back now. */
bool
PendingDeferred(void)
{
	return defer_depth > 0;
}

/* CompareRooms orders pending rooms by name, for a stable lock and event order. */
static int
CompareRooms(const void *a, const void *b)
{
	return strcmp((*(RoomChanges *const *) a)->room,
				  (*(RoomChanges *const *) b)->room);
}

/*
 * PendingTake hands the pending rooms, sorted by name, to the caller, who
 * deletes *cxt (their memory) once they are sent; the table starts afresh.
 */
RoomChanges **
PendingTake(int *nrooms, MemoryContext *cxt)
{
	HASH_SEQ_STATUS seq;
	RoomChanges **rooms;
	RoomChanges *rc;
	int			i = 0;

	*nrooms = (int) hash_get_num_entries(changes);
	rooms = MemoryContextAlloc(changes_cxt, Max(*nrooms, 1) * sizeof(RoomChanges *));
	hash_seq_init(&seq, changes);
	while ((rc = hash_seq_search(&seq)) != NULL)
		rooms[i++] = rc;
	qsort(rooms, *nrooms, sizeof(RoomChanges *), CompareRooms);

	*cxt = changes_cxt;
	changes_cxt = NULL;
	changes = NULL;
	meta_bytes = 0;
	return rooms;
}

/*
 * PendingPayloadSeen records that this transaction sends a payload whose
 * body (before any seq, ts or sig) is body; returns 0 the first time, else
 * the ordinal of this event in the transaction, for a "seq" key that keeps
 * NOTIFY from folding the repeat into the first.
 */
int
PendingPayloadSeen(const char *body, int len)
{
	uint64		hash = hash_bytes_extended((const unsigned char *) body, len, 0);
	bool		found;

	if (sent == NULL)
	{
		HASHCTL		ctl;

		RegisterCallbacks();
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(uint64);
		ctl.hcxt = TopTransactionContext;
		sent = hash_create("presence sent payloads", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	sent_count++;
	(void) hash_search(sent, &hash, HASH_ENTER, &found);
	return found ? sent_count : 0;
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
