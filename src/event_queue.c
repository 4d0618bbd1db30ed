/*-------------------------------------------------------------------------
 *
 * event_queue.c
 *		The second event transport (DESIGN.md sections 6 and 13): with
 *		presence in shared_preload_libraries, writer transactions never
 *		NOTIFY.  They hand their events to a background worker of their
 *		database (worker.c) through a ring buffer in shared memory, and the
 *		worker sends them with NOTIFY in its own transactions.  A stalled
 *		listener or a full NOTIFY queue then never fails or slows a writer.
 *
 * Shared memory holds presence.max_databases slots, each a ring of
 * presence.queue_size bytes, assigned to a database on its first event and
 * released when its worker exits idle.  A writer collects the events of its
 * transaction (the outbox, in transaction memory), and:
 *  - before commit (XACT_EVENT_PRE_COMMIT, where an error is still allowed)
 *    reserves room in its database's ring and copies them there, marked
 *    RESERVED, and makes sure the worker runs;
 *  - at commit marks the record PUBLISHED and wakes the worker;
 *  - on abort (also an abort after the reservation) marks it ABORTED.
 * The worker reads records in ring order and stops at a RESERVED one, so
 * events go out in the order their transactions reserved, which for
 * changes that conflict (same presence, same room and user: a row or
 * advisory lock held to commit) is their commit order.
 *
 * When a ring is full the writer does not wait: it sets the slot's overflow
 * flag and drops its events, and the worker later announces a bulk_change
 * for every room (re-read).  When no slot is free (more databases with
 * events than presence.max_databases), the writer notifies directly, as
 * without preload.
 *
 * The ring is a byte stream: records and their fields are copied in and out
 * with RingWrite/RingRead, which wrap at the end.
 *
 *-------------------------------------------------------------------------
 */
#include "events.h"
#include "event_queue.h"

#include "access/xact.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "mb/pg_wchar.h"
#include "catalog/pg_database.h"
#include "utils/acl.h"
#include "utils/hsearch.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "funcapi.h"
#include "utils/tuplestore.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* Settings (defined in presence.c). */
int			presence_queue_size_kb = 4096;
int			presence_max_databases = 4;
int			presence_worker_idle_timeout_ms = 300000;

/* Set in _PG_init when loaded by shared_preload_libraries. */
bool		presence_preloaded = false;

EventShared *event_shared = NULL;

#if PG_VERSION_NUM < 150000
shmem_request_hook_type presence_shmem_request_hook = NULL;	/* compat.h */
#endif
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/* One event waiting in a writer's outbox. */
typedef struct OutEvent
{
	SubTransactionId subid;
	char	   *channel;
	char	   *room;
	int64		added;
	int64		removed;
	char	   *payload;
} OutEvent;

/* The writer's outbox, and its reservation between pre-commit and commit. */
static MemoryContext outbox_cxt = NULL;
static List *outbox = NIL;
static Size outbox_bytes = 0;
static bool outbox_folded = false;
static EventSlot *reserved_slot = NULL;
static uint64 reserved_pos = 0;
static EventSlot *overflowed_slot = NULL;	/* found full at pre-commit */
static bool callbacks_registered = false;
static bool warned_no_worker = false;

/* RingSize returns the size of each slot's ring in bytes. */
static Size
RingSize(void)
{
	return (Size) presence_queue_size_kb * 1024;
}

/* SharedSize returns the shared memory the queues take. */
static Size
SharedSize(void)
{
	Size		size = offsetof(EventShared, slots);

	size = add_size(size, mul_size(presence_max_databases, sizeof(EventSlot)));
	size = MAXALIGN(size);
	return add_size(size, mul_size(presence_max_databases, RingSize()));
}

/* SlotRing returns the first byte of slot's ring. */
static char *
SlotRing(EventSlot *slot)
{
	char	   *base = (char *) event_shared +
		MAXALIGN(offsetof(EventShared, slots) +
				 presence_max_databases * sizeof(EventSlot));

	return base + (Size) slot->index * event_shared->ring_size;
}

/* RingWrite copies len bytes to ring position pos of slot, wrapping around. */
void
RingWrite(EventSlot *slot, uint64 pos, const void *data, Size len)
{
	Size		size = event_shared->ring_size;
	Size		off = (Size) (pos % size);
	Size		first = Min(len, size - off);

	memcpy(SlotRing(slot) + off, data, first);
	if (first < len)
		memcpy(SlotRing(slot), (const char *) data + first, len - first);
}

/* RingRead copies len bytes from ring position pos of slot, wrapping around. */
void
RingRead(EventSlot *slot, uint64 pos, void *data, Size len)
{
	Size		size = event_shared->ring_size;
	Size		off = (Size) (pos % size);
	Size		first = Min(len, size - off);

	memcpy(data, SlotRing(slot) + off, first);
	if (first < len)
		memcpy((char *) data + first, SlotRing(slot), len - first);
}

/* SetState sets the state of the record at pos; caller holds the slot lock. */
static void
SetState(EventSlot *slot, uint64 pos, uint32 state)
{
	RingWrite(slot, pos + offsetof(RecordHeader, state), &state, sizeof(state));
}

/* EventQueueShmemRequest asks for the shared memory and the locks. */
static void
EventQueueShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(SharedSize());
	RequestNamedLWLockTranche("presence", presence_max_databases + 1);
}

/* EventQueueShmemStartup creates or attaches to the queues. */
static void
EventQueueShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	event_shared = ShmemInitStruct("presence event queues", SharedSize(), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("presence");

		memset(event_shared, 0, SharedSize());
		event_shared->assign_lock = &locks[0].lock;
		event_shared->nslots = presence_max_databases;
		event_shared->ring_size = RingSize();
		for (int i = 0; i < presence_max_databases; i++)
		{
			EventSlot  *slot = &event_shared->slots[i];

			slot->index = i;
			slot->lock = &locks[i + 1].lock;
			ConditionVariableInit(&slot->sent_cv);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * EventQueueSlot returns the slot of database dboid, claiming a free one if
 * claim is set; NULL if it has none (or none is free).
 */
EventSlot *
EventQueueSlot(Oid dboid, bool claim)
{
	EventSlot  *found = NULL;

	LWLockAcquire(event_shared->assign_lock, LW_EXCLUSIVE);
	for (int i = 0; i < event_shared->nslots && found == NULL; i++)
		if (event_shared->slots[i].dboid == dboid)
			found = &event_shared->slots[i];
	for (int i = 0; i < event_shared->nslots && found == NULL && claim; i++)
	{
		EventSlot  *slot = &event_shared->slots[i];

		if (!OidIsValid(slot->dboid))
		{
			LWLockAcquire(slot->lock, LW_EXCLUSIVE);
			slot->dboid = dboid;
			slot->head = slot->tail = slot->sent_upto = 0;
			slot->overflow = false;
			slot->exit_requested = false;
			LWLockRelease(slot->lock);
			found = slot;
		}
	}
	LWLockRelease(event_shared->assign_lock);
	return found;
}

/*
 * EnsureWorker starts the worker of slot unless it runs or is starting.
 * Returns false if it could not be registered (no free worker slot).
 */
static bool
EnsureWorker(EventSlot *slot)
{
	BackgroundWorker worker;
	TimestampTz now = GetCurrentTimestamp();
	bool		start;

	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	start = slot->worker_pid == 0 &&
		(slot->start_requested == 0 ||
		 TimestampDifferenceExceeds(slot->start_requested, now, 10000));
	if (start)
		slot->start_requested = now;
	LWLockRelease(slot->lock);
	if (!start)
		return true;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "presence");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "presence_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "presence events for database %u",
			 MyDatabaseId);
	snprintf(worker.bgw_type, BGW_MAXLEN, "presence events");
	worker.bgw_main_arg = Int32GetDatum(slot->index);
	memcpy(worker.bgw_extra, &MyDatabaseId, sizeof(Oid));
	if (RegisterDynamicBackgroundWorker(&worker, NULL))
		return true;

	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	slot->start_requested = 0;
	LWLockRelease(slot->lock);
	if (!warned_no_worker)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the presence event worker"),
				 errhint("Raise max_worker_processes.")));
	warned_no_worker = true;
	return false;
}

/* EventQueueWakeWorker wakes slot's worker, if it runs. */
static void
WakeWorker(EventSlot *slot)
{
	Latch	   *latch;

	LWLockAcquire(slot->lock, LW_SHARED);
	latch = slot->latch;
	if (latch != NULL)
		SetLatch(latch);
	LWLockRelease(slot->lock);
}

/* EntrySize returns the bytes event e takes in a ring. */
static Size
EntrySize(OutEvent *e)
{
	return sizeof(EntryHeader) + strlen(e->channel) + strlen(e->room) +
		(e->payload != NULL ? strlen(e->payload) : 0);
}

/* WriteEntry copies e to ring position pos of slot; returns the next position. */
static uint64
WriteEntry(EventSlot *slot, uint64 pos, OutEvent *e)
{
	EntryHeader h;

	h.len = (uint32) EntrySize(e);
	h.channel_len = (uint16) strlen(e->channel);
	h.room_len = (uint16) strlen(e->room);
	h.added = e->added;
	h.removed = e->removed;
	RingWrite(slot, pos, &h, sizeof(h));
	pos += sizeof(h);
	RingWrite(slot, pos, e->channel, h.channel_len);
	pos += h.channel_len;
	RingWrite(slot, pos, e->room, h.room_len);
	pos += h.room_len;
	if (e->payload != NULL)
		RingWrite(slot, pos, e->payload, h.len - sizeof(h) - h.channel_len - h.room_len);
	return pos + h.len - sizeof(h) - h.channel_len - h.room_len;
}

/* NotifyDirectly sends the outbox with NOTIFY, as without preload. */
static void
NotifyDirectly(void)
{
	ListCell   *lc;

	StringInfoData buf;

	initStringInfo(&buf);
	foreach(lc, outbox)
	{
		OutEvent   *e = lfirst(lc);

		if (e->payload != NULL)
			Async_Notify(e->channel, e->payload);
		else
		{
			PresenceBuildBulkPayload(&buf, e->room, e->added, e->removed);
			Async_Notify(e->channel, buf.data);
		}
	}
}

/*
 * FoldOutbox replaces the outbox's events by one count per channel, room and
 * subtransaction, without payloads: each becomes a bulk_change (re-read the
 * room) when sent.  Used when the events do not fit the ring, and to keep a
 * transaction that changes very many rooms from holding every payload.
 */
static void
FoldOutbox(void)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(outbox_cxt);
	HASHCTL		ctl;
	HTAB	   *seen;
	List	   *folded = NIL;
	ListCell   *lc;

	ctl.keysize = NAMEDATALEN + PRESENCE_NAME_MAX_CHARS * MAX_MULTIBYTE_CHAR_LEN + 16;
	ctl.entrysize = ctl.keysize + sizeof(OutEvent *);
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("presence folded outbox", 256, &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	outbox_bytes = 0;
	foreach(lc, outbox)
	{
		OutEvent   *e = lfirst(lc);
		char	   *key = palloc0(ctl.keysize);
		char	   *entry;
		bool		found;

		snprintf(key, ctl.keysize, "%s\x01%s\x01%u", e->channel, e->room, e->subid);
		entry = hash_search(seen, key, HASH_ENTER, &found);
		pfree(key);
		if (found)
		{
			OutEvent   *first;

			memcpy(&first, entry + ctl.keysize, sizeof(first));
			first->added += e->added;
			first->removed += e->removed;
			continue;
		}
		if (e->payload != NULL)
		{
			pfree(e->payload);
			e->payload = NULL;
		}
		memcpy(entry + ctl.keysize, &e, sizeof(e));
		folded = lappend(folded, e);
		outbox_bytes += EntrySize(e);
	}
	hash_destroy(seen);
	outbox = folded;
	outbox_folded = true;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Reserve copies the outbox into the ring of this database, marked
 * RESERVED, before commit.  Never waits and never fails the transaction
 * for want of room: a full ring sets the overflow flag instead.
 */
static void
Reserve(void)
{
	static EventSlot *cached = NULL;
	RecordHeader rec;
	ListCell   *lc;
	Size		size = sizeof(RecordHeader);
	uint64		pos;
	bool		start;

	foreach(lc, outbox)
		size += EntrySize(lfirst(lc));

	/* A worker that frees the slot just now makes us claim one again. */
	for (int attempt = 0;; attempt++)
	{
		EventSlot  *slot = cached;

		if (slot == NULL || slot->dboid != MyDatabaseId)
			slot = cached = EventQueueSlot(MyDatabaseId, true);
		if (slot == NULL || attempt == 3)
		{
			NotifyDirectly();
			return;
		}

		/* Unlocked look: a running worker is the common case. */
		if (slot->worker_pid == 0)
		{
			bool		pending;

			LWLockAcquire(slot->lock, LW_SHARED);
			pending = slot->head != slot->sent_upto;
			LWLockRelease(slot->lock);
			if (!EnsureWorker(slot) && !pending)
			{
				/* No worker and nothing queued: direct NOTIFY keeps the order. */
				NotifyDirectly();
				return;
			}
		}

		LWLockAcquire(slot->lock, LW_EXCLUSIVE);
		if (slot->dboid != MyDatabaseId)
		{
			LWLockRelease(slot->lock);
			cached = NULL;
			continue;
		}
		if (size > event_shared->ring_size - (slot->head - slot->tail) &&
			!outbox_folded)
		{
			/* One bulk_change per room takes less room than the events. */
			LWLockRelease(slot->lock);
			FoldOutbox();
			size = sizeof(RecordHeader);
			foreach(lc, outbox)
				size += EntrySize(lfirst(lc));
			attempt--;
			continue;
		}
		if (size > event_shared->ring_size - (slot->head - slot->tail))
		{
			/*
			 * Told at commit (Settle), so that the worker's re-announcement
			 * of every room reads the rooms this transaction made.
			 */
			LWLockRelease(slot->lock);
			overflowed_slot = slot;
			return;
		}
		start = slot->worker_pid == 0;
		pos = slot->head;
		slot->head += size;
		rec.len = (uint32) size;
		rec.state = RECORD_RESERVED;
		rec.nevents = (uint32) list_length(outbox);
		rec.pad = 0;
		RingWrite(slot, pos, &rec, sizeof(rec));
		LWLockRelease(slot->lock);

		/* The worker stops at a RESERVED record: fill it without the lock. */
		reserved_slot = slot;
		reserved_pos = pos;
		pos += sizeof(rec);
		foreach(lc, outbox)
			pos = WriteEntry(slot, pos, lfirst(lc));
		/* The worker went away since we looked: someone must send these. */
		if (start)
			(void) EnsureWorker(slot);
		return;
	}
}

/*
 * Settle marks the reserved record PUBLISHED or ABORTED and wakes the
 * worker; or, when the ring had no room at pre-commit, tells it at commit
 * that events were dropped.  Called where no error is allowed.
 */
static void
Settle(uint32 state)
{
	EventSlot  *slot = reserved_slot;

	Latch	   *latch;

	reserved_slot = NULL;
	if (slot == NULL && overflowed_slot != NULL && state == RECORD_PUBLISHED)
	{
		slot = overflowed_slot;
		LWLockAcquire(slot->lock, LW_EXCLUSIVE);
		if (slot->dboid == MyDatabaseId)
			slot->overflow = true;
		latch = slot->latch;
		LWLockRelease(slot->lock);
		overflowed_slot = NULL;
		if (latch != NULL)
			SetLatch(latch);
		return;
	}
	overflowed_slot = NULL;
	if (slot == NULL)
		return;
	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	SetState(slot, reserved_pos, state);
	latch = slot->latch;
	LWLockRelease(slot->lock);
	if (latch != NULL)
		SetLatch(latch);
}

/* ForgetOutbox drops the outbox (its memory goes with the transaction). */
static void
ForgetOutbox(void)
{
	outbox = NIL;
	outbox_cxt = NULL;
	outbox_bytes = 0;
	outbox_folded = false;
}

/*
 * EventQueueXact moves the outbox through the transaction's end; called by
 * the transaction callback of event_pending.c, after it has sent what was
 * still pending (the one callback orders the two).
 */
void
EventQueueXact(XactEvent event)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (outbox != NIL)
				Reserve();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (outbox != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that changed presences"),
						 errdetail("Its events would have to wait for COMMIT PREPARED.")));
			break;
		case XACT_EVENT_COMMIT:
			Settle(RECORD_PUBLISHED);
			ForgetOutbox();
			break;
		case XACT_EVENT_ABORT:
			Settle(RECORD_ABORTED);
			ForgetOutbox();
			break;
		case XACT_EVENT_PREPARE:
			ForgetOutbox();
			break;
		default:
			break;
	}
}

/*
 * OutboxSubXactCallback drops the events of a subtransaction that rolls
 * back.  The outbox lives in the transaction's memory, not in the abort
 * context this runs in, so it is trimmed in place.
 */
static void
OutboxSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB || outbox == NIL)
		return;
	foreach(lc, outbox)
	{
		OutEvent   *e = lfirst(lc);

		if (e->subid >= mySubid)
			outbox = foreach_delete_current(outbox, lc);
	}
}

/*
 * EventQueueAdd puts one event of this transaction in its outbox (worker
 * mode), or sends it with NOTIFY (direct mode).
 */
void
EventQueueAdd(const char *payload, const PresenceEvent *ev)
{
	MemoryContext oldcxt;
	OutEvent   *e;

	if (event_shared == NULL)
	{
		Async_Notify(presence_notify_channel, payload);
		return;
	}
	if (!callbacks_registered)
	{
		RegisterSubXactCallback(OutboxSubXactCallback, NULL);
		callbacks_registered = true;
	}
	PresenceEventsRegisterCallbacks();
	if (outbox_cxt == NULL)
		outbox_cxt = AllocSetContextCreate(TopTransactionContext, "presence outbox",
										   ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(outbox_cxt);
	e = palloc(sizeof(OutEvent));
	e->subid = GetCurrentSubTransactionId();
	e->channel = pstrdup(presence_notify_channel);
	e->room = pstrdup(ev->room);
	e->added = ev->bulk ? ev->added_count : ev->kind == CHANGE_ADDED;
	e->removed = ev->bulk ? ev->removed_count : ev->kind == CHANGE_REMOVED;
	e->payload = outbox_folded ? NULL : pstrdup(payload);
	outbox = lappend(outbox, e);
	outbox_bytes += EntrySize(e);
	MemoryContextSwitchTo(oldcxt);

	/* More than the ring holds will not go as events: keep counts only. */
	if (!outbox_folded && outbox_bytes > event_shared->ring_size)
		FoldOutbox();
}

/*
 * StopWorkerOf asks the worker of database dbname to exit and waits (up to
 * 5 s) until it has: DROP DATABASE, ALTER DATABASE ... RENAME or SET
 * TABLESPACE and CREATE DATABASE ... TEMPLATE refuse to run while another
 * process is connected to that database.
 */
static void
StopWorkerOf(const char *dbname)
{
	Oid			dboid = get_database_oid(dbname, true);
	EventSlot  *slot;

	if (!OidIsValid(dboid) || (slot = EventQueueSlot(dboid, false)) == NULL)
		return;
	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	slot->exit_requested = true;
	LWLockRelease(slot->lock);
	WakeWorker(slot);
	for (int i = 0; i < 500; i++)
	{
		bool		gone;

		LWLockAcquire(slot->lock, LW_SHARED);
		gone = slot->worker_pid == 0 || slot->dboid != dboid;
		LWLockRelease(slot->lock);
		if (gone)
			return;
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000);
	}
}

/*
 * DatabaseNeedingNoWorker names the database stmt needs alone, or NULL; only
 * for a statement the current user may run on it, so that nobody can stop
 * another's worker with a statement that will fail.
 */
static const char *
DatabaseNeedingNoWorker(Node *stmt)
{
	const char *dbname = NULL;
	bool		own = true;
	ListCell   *lc;

	if (IsA(stmt, DropdbStmt))
		dbname = ((DropdbStmt *) stmt)->dbname;
	else if (IsA(stmt, RenameStmt) && ((RenameStmt *) stmt)->renameType == OBJECT_DATABASE)
		dbname = ((RenameStmt *) stmt)->subname;
	else if (IsA(stmt, AlterDatabaseStmt))
	{
		foreach(lc, ((AlterDatabaseStmt *) stmt)->options)
			if (strcmp(((DefElem *) lfirst(lc))->defname, "tablespace") == 0)
				dbname = ((AlterDatabaseStmt *) stmt)->dbname;
	}
	else if (IsA(stmt, CreatedbStmt) && have_createdb_privilege())
	{
		own = false;			/* copying a template needs no ownership */
		foreach(lc, ((CreatedbStmt *) stmt)->options)
		{
			DefElem    *opt = lfirst(lc);

			if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
				dbname = defGetString(opt);
		}
	}
	if (dbname != NULL && own)
	{
		Oid			dboid = get_database_oid(dbname, true);

		if (!OidIsValid(dboid) || !PresenceOwnsDatabase(dboid))
			return NULL;
	}
	return dbname;
}

/* FreeSlotOf frees the slot of a database that no longer exists. */
static void
FreeSlotOf(Oid dboid)
{
	EventSlot  *slot = EventQueueSlot(dboid, false);

	if (slot == NULL)
		return;
	LWLockAcquire(event_shared->assign_lock, LW_EXCLUSIVE);
	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	if (slot->dboid == dboid && slot->worker_pid == 0)
	{
		slot->dboid = InvalidOid;
		slot->head = slot->tail = slot->sent_upto = 0;
		slot->overflow = false;
		slot->start_requested = 0;
	}
	LWLockRelease(slot->lock);
	LWLockRelease(event_shared->assign_lock);
}

/*
 * PresenceProcessUtility stops the event worker of a database that a
 * statement needs without other connections, then runs the statement; after
 * DROP DATABASE it frees the database's slot.
 */
static void
PresenceProcessUtility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	const char *dbname = NULL;
	Oid			dropped = InvalidOid;

	if (event_shared != NULL)
		dbname = DatabaseNeedingNoWorker(pstmt->utilityStmt);
	if (dbname != NULL)
	{
		StopWorkerOf(dbname);
		if (IsA(pstmt->utilityStmt, DropdbStmt))
			dropped = get_database_oid(dbname, true);
	}
	if (prev_process_utility_hook)
		PresenceCallProcessUtility(prev_process_utility_hook, pstmt, queryString,
								   readOnlyTree, context, params, queryEnv, dest, qc);
	else
		PresenceCallProcessUtility(standard_ProcessUtility, pstmt, queryString,
								   readOnlyTree, context, params, queryEnv, dest, qc);
	if (OidIsValid(dropped))
		FreeSlotOf(dropped);
}

#if PG_VERSION_NUM < 140000
/* PresenceProcessUtility13 is the hook on 13, which has no readOnlyTree. */
static void
PresenceProcessUtility13(PlannedStmt *pstmt, const char *queryString,
						 ProcessUtilityContext context, ParamListInfo params,
						 QueryEnvironment *queryEnv, DestReceiver *dest,
						 QueryCompletion *qc)
{
	PresenceProcessUtility(pstmt, queryString, false, context, params,
						   queryEnv, dest, qc);
}
#define PresenceProcessUtility PresenceProcessUtility13
#endif

/* EventQueueInit installs the hooks of worker mode; called from _PG_init. */
void
EventQueueInit(void)
{
	presence_preloaded = true;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = EventQueueShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = EventQueueShmemStartup;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = PresenceProcessUtility;
	PresenceRequestShmemNow();	/* before 15 only (compat.h) */
}

PG_FUNCTION_INFO_V1(presence_flush_events);

/*
 * presence_flush_events waits until the events of every transaction of this
 * database that committed before the call have been sent (handed to NOTIFY
 * by a committed transaction of the worker), at most timeout; true if they
 * have.  Without preload events are sent at commit: true at once.
 */
Datum
presence_flush_events(PG_FUNCTION_ARGS)
{
	Interval   *timeout = PG_ARGISNULL(0) ? NULL : PG_GETARG_INTERVAL_P(0);
	TimestampTz deadline;
	EventSlot  *slot;
	uint64		target;

	if (event_shared == NULL ||
		(slot = EventQueueSlot(MyDatabaseId, false)) == NULL)
		PG_RETURN_BOOL(true);

	deadline = GetCurrentTimestamp() +
		(timeout == NULL ? 10 * USECS_PER_SEC :
		 timeout->time + (timeout->day + (int64) timeout->month * 30) * USECS_PER_DAY);
	LWLockAcquire(slot->lock, LW_SHARED);
	target = slot->head;
	LWLockRelease(slot->lock);
	if (target != slot->sent_upto)
		(void) EnsureWorker(slot);

	ConditionVariablePrepareToSleep(&slot->sent_cv);
	for (;;)
	{
		uint64		sent;
		long		left = (long) ((deadline - GetCurrentTimestamp()) / 1000);

		LWLockAcquire(slot->lock, LW_SHARED);
		sent = slot->dboid == MyDatabaseId ? slot->sent_upto : target;
		LWLockRelease(slot->lock);
		if (sent >= target || left <= 0)
			break;
		(void) ConditionVariableTimedSleep(&slot->sent_cv, Min(left, 100L),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();

	LWLockAcquire(slot->lock, LW_SHARED);
	target = slot->dboid != MyDatabaseId || slot->sent_upto >= target;
	LWLockRelease(slot->lock);
	PG_RETURN_BOOL(target);
}

PG_FUNCTION_INFO_V1(presence_queue_status);

/*
 * presence_queue_status returns one row per database slot of the worker
 * transport: the database, its worker's pid (NULL: none running), the bytes
 * of events queued for the worker to read, and the bytes not yet sent.  No
 * rows without preload.
 */
Datum
presence_queue_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (event_shared == NULL)
		return (Datum) 0;
	for (int i = 0; i < event_shared->nslots; i++)
	{
		EventSlot  *slot = &event_shared->slots[i];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		LWLockAcquire(slot->lock, LW_SHARED);
		values[0] = ObjectIdGetDatum(slot->dboid);
		values[1] = Int32GetDatum(slot->worker_pid);
		nulls[1] = slot->worker_pid == 0;
		values[2] = Int64GetDatum((int64) (slot->head - slot->tail));
		values[3] = Int64GetDatum((int64) (slot->head - slot->sent_upto));
		LWLockRelease(slot->lock);
		if (!OidIsValid(DatumGetObjectId(values[0])))
			continue;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
