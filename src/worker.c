/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The background worker that sends a database's events in worker mode
 *		(presence in shared_preload_libraries; see event_queue.c).
 *
 * One worker per database with events, started by the first writer that
 * needs it, restarted after an error, gone after
 * presence.worker_idle_timeout without events (the next event starts it
 * again) or when its database is to be dropped, renamed or copied.  It:
 *  1. drains published records from its ring into its own memory, in ring
 *     order, skipping aborted ones and stopping at one still being
 *     committed;
 *  2. sends them with NOTIFY, in transactions of at most SEND_BATCH events
 *     (a batch also ends before a payload it already holds, which NOTIFY
 *     would fold); payloads are the writers', unchanged;
 *  3. when NOTIFY fails (its queue is full: a listener stopped reading, or
 *     sits in an open transaction), keeps the events and tries again every
 *     second.  Writers do not notice.  Past presence.queue_size bytes held,
 *     it folds each room's events into one bulk_change (listeners re-read
 *     the room) and logs a warning once; if even that does not fit, or a
 *     writer found the ring full, it drops what it holds and, once NOTIFY
 *     works again, sends a bulk_change for every room of presence.rooms.
 *     Its memory never grows past the bound.
 *
 *-------------------------------------------------------------------------
 */
#include "events.h"
#include "event_queue.h"

#include "access/xact.h"
#include "commands/async.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "lib/ilist.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* Events per sending transaction, at most. */
#define SEND_BATCH 1000

/* Wait before trying NOTIFY again after it failed, in ms. */
#define RETRY_MS 1000

/*
 * Under load (the last batch went out less than BUSY_MS ago) the worker
 * lingers LINGER_US after a wakeup, so that one transaction of its carries
 * the events of many writers: each of its commits costs as much as a
 * writer's.  An event after a quiet spell goes out at once.
 */
#define BUSY_MS 5
#define LINGER_US 1000

/* An event the worker holds until it is sent. */
typedef struct LocalEvent
{
	dlist_node	node;
	char	   *channel;
	char	   *room;
	int64		added;
	int64		removed;
	char	   *payload;		/* NULL: folded into a bulk_change */
	uint64		first_pos;		/* ring position of its (earliest) record */
	Size		bytes;
} LocalEvent;

static EventSlot *slot = NULL;
static Oid	my_dboid = InvalidOid;
static MemoryContext worker_cxt = NULL;
static dlist_head held = DLIST_STATIC_INIT(held);
static Size held_bytes = 0;
static bool need_resync = false;
static bool stalled = false;
static bool folded_warned = false;
static TimestampTz retry_at = 0;
static uint64 drained_upto = 0;
static TimestampTz last_send = 0;

/*
 * The rooms whose events were dropped (channel, 0x01, room), re-announced
 * with the rooms of presence.rooms by SendResync: a room emptied and then
 * deleted by prune_rooms meanwhile is in the one, not the other.  At most
 * DROPPED_MAX; past that, only the rooms that still exist are re-announced.
 */
#define DROPPED_MAX 10000
#define DROPPED_KEY (NAMEDATALEN + PRESENCE_NAME_MAX_CHARS * MAX_MULTIBYTE_CHAR_LEN + 2)
static HTAB *dropped = NULL;
static volatile sig_atomic_t got_sigterm = false;

PGDLLEXPORT void presence_worker_main(Datum arg);

/* WorkerSigterm asks the main loop to finish (exit code 0: no restart). */
static void
WorkerSigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/* Bound returns the most bytes of events the worker holds. */
static Size
Bound(void)
{
	return (Size) presence_queue_size_kb * 1024;
}

/* Hold appends an event to the held ones, in worker memory. */
static LocalEvent *
Hold(const char *channel, const char *room, int64 added, int64 removed,
	 const char *payload, uint64 pos)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(worker_cxt);
	LocalEvent *e = palloc(sizeof(LocalEvent));

	e->channel = pstrdup(channel);
	e->room = pstrdup(room);
	e->added = added;
	e->removed = removed;
	e->payload = payload != NULL ? pstrdup(payload) : NULL;
	e->first_pos = pos;
	e->bytes = sizeof(LocalEvent) + strlen(channel) + strlen(room) + 2 +
		(payload != NULL ? strlen(payload) + 1 : 0);
	dlist_push_tail(&held, &e->node);
	held_bytes += e->bytes;
	MemoryContextSwitchTo(oldcxt);
	return e;
}

/* Release frees one held event. */
static void
Release(LocalEvent *e)
{
	dlist_delete(&e->node);
	held_bytes -= e->bytes;
	pfree(e->channel);
	pfree(e->room);
	if (e->payload != NULL)
		pfree(e->payload);
	pfree(e);
}

/* RememberDropped notes that the events of e's room are dropped. */
static void
RememberDropped(LocalEvent *e)
{
	char		key[DROPPED_KEY];

	if (dropped == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = DROPPED_KEY;
		ctl.entrysize = DROPPED_KEY;
		ctl.hcxt = worker_cxt;
		dropped = hash_create("presence dropped rooms", 256, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	if (hash_get_num_entries(dropped) >= DROPPED_MAX)
		return;
	memset(key, 0, sizeof(key));
	snprintf(key, sizeof(key), "%s%c%s", e->channel, '\x01', e->room);
	(void) hash_search(dropped, key, HASH_ENTER, NULL);
}

/*
 * DropHeld drops the first n held events (all when n < 0), remembering
 * their rooms, and asks for a re-announcement: listeners must re-read
 * those rooms.
 */
static void
DropHeld(int n)
{
	while (!dlist_is_empty(&held) && n-- != 0)
	{
		LocalEvent *e = dlist_head_element(LocalEvent, node, &held);

		RememberDropped(e);
		Release(e);
	}
	need_resync = true;
}

/*
 * Fold replaces the held events by one bulk_change per channel and room,
 * with the summed counts, each where the room's first event was.
 */
static void
Fold(void)
{
	HASHCTL		ctl;
	HTAB	   *rooms;
	dlist_mutable_iter it;

	if (!folded_warned)
		ereport(WARNING,
				(errmsg("presence: %zu bytes of events are waiting for NOTIFY; folding them into one bulk_change per room",
						held_bytes),
				 errdetail("NOTIFY's queue is full or nobody drains it (a listener that stopped reading, or sits in an open transaction)."),
				 errhint("Find the listener with pg_notification_queue_usage() and pg_stat_activity, and end it.")));
	folded_warned = true;

	ctl.keysize = NAMEDATALEN + PRESENCE_NAME_MAX_CHARS * MAX_MULTIBYTE_CHAR_LEN + 2;
	ctl.entrysize = ctl.keysize + sizeof(LocalEvent *);
	ctl.hcxt = CurrentMemoryContext;
	rooms = hash_create("presence folded rooms", 256, &ctl,
						HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	dlist_foreach_modify(it, &held)
	{
		LocalEvent *e = dlist_container(LocalEvent, node, it.cur);
		char	   *key = palloc0(ctl.keysize);
		bool		found;
		char	   *entry;
		LocalEvent *first;

		snprintf(key, ctl.keysize, "%s%c%s", e->channel, '\x01', e->room);
		entry = hash_search(rooms, key, HASH_ENTER, &found);
		pfree(key);
		if (!found)
		{
			memcpy(entry + ctl.keysize, &e, sizeof(e));
			if (e->payload != NULL)
			{
				held_bytes -= strlen(e->payload) + 1;
				e->bytes -= strlen(e->payload) + 1;
				pfree(e->payload);
				e->payload = NULL;
			}
			continue;
		}
		memcpy(&first, entry + ctl.keysize, sizeof(first));
		first->added += e->added;
		first->removed += e->removed;
		Release(e);
	}
	hash_destroy(rooms);
}

/* HoldRecord takes the events of the published record at pos into memory. */
static void
HoldRecord(uint64 pos, const RecordHeader *rec)
{
	uint64		at = pos + sizeof(RecordHeader);

	for (uint32 i = 0; i < rec->nevents; i++)
	{
		EntryHeader h;
		char		channel[NAMEDATALEN + 1];
		char	   *room;
		char	   *payload;
		Size		plen;

		RingRead(slot, at, &h, sizeof(h));
		plen = h.len - sizeof(h) - h.channel_len - h.room_len;
		room = palloc(h.room_len + 1);
		payload = palloc(plen + 1);
		RingRead(slot, at + sizeof(h), channel, Min(h.channel_len, NAMEDATALEN));
		channel[Min(h.channel_len, NAMEDATALEN)] = '\0';
		RingRead(slot, at + sizeof(h) + h.channel_len, room, h.room_len);
		room[h.room_len] = '\0';
		RingRead(slot, at + sizeof(h) + h.channel_len + h.room_len, payload, plen);
		payload[plen] = '\0';
		/* An entry without payload is a writer's count for the room. */
		Hold(channel, room, h.added, h.removed, plen > 0 ? payload : NULL, pos);
		pfree(room);
		pfree(payload);
		at += h.len;
	}

	if (held_bytes > Bound())
		Fold();
	if (held_bytes > Bound())
		DropHeld(-1);			/* too many rooms even folded */
}

/*
 * Drain moves the published records of the ring into the worker's memory.
 * Under the lock it only finds how far the records are settled; it copies
 * them without it (a settled record is not touched by writers, and its bytes
 * are not reused before the tail moves past them), then moves the tail.
 */
static void
Drain(void)
{
	uint64		from;
	uint64		upto;

	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	if (slot->overflow)
	{
		slot->overflow = false;
		DropHeld(-1);
	}
	from = upto = slot->tail;
	while (upto < slot->head)
	{
		RecordHeader rec;

		RingRead(slot, upto, &rec, sizeof(rec));
		if (rec.state == RECORD_RESERVED)
			break;				/* its transaction is committing */
		upto += rec.len;
	}
	LWLockRelease(slot->lock);

	while (from < upto)
	{
		RecordHeader rec;

		RingRead(slot, from, &rec, sizeof(rec));
		if (rec.state == RECORD_PUBLISHED)
			HoldRecord(from, &rec);
		from += rec.len;
	}

	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	slot->tail = upto;
	LWLockRelease(slot->lock);
	drained_upto = upto;
}

/* UpdateSent publishes how far events are sent, for flush_events(). */
static void
UpdateSent(void)
{
	uint64		sent;

	if (need_resync)
		return;
	sent = dlist_is_empty(&held) ? drained_upto :
		dlist_head_element(LocalEvent, node, &held)->first_pos;
	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	if (sent > slot->sent_upto)
		slot->sent_upto = sent;
	LWLockRelease(slot->lock);
	ConditionVariableBroadcast(&slot->sent_cv);
}

/*
 * Failed reports an error of a sending transaction; true if it was NOTIFY's
 * queue being full (try again later), false for anything else (the events
 * of that transaction are dropped, with a warning).
 */
static bool
Failed(const char *what)
{
	ErrorData  *edata;
	bool		full;

	MemoryContextSwitchTo(worker_cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	full = edata->sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED;
	if (!full)
		ereport(WARNING,
				(errmsg("presence: could not send %s: %s", what, edata->message)));
	else if (!stalled)
		ereport(WARNING,
				(errmsg("presence: NOTIFY refuses events: %s", edata->message),
				 errdetail("The worker keeps them and tries again every second; writers are not affected.")));
	FreeErrorData(edata);
	return full;
}

/*
 * SendBatch sends the first held events (up to SEND_BATCH, and not two
 * equal payloads) in one transaction.  Returns false if NOTIFY refused
 * them; they are then still held.
 */
static bool
SendBatch(void)
{
	volatile int count = 0;
	volatile bool ok = true;

	StartTransactionCommand();
	PG_TRY();
	{
		HASHCTL		ctl;
		HTAB	   *seen;
		dlist_iter	it;
		StringInfoData buf;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(uint64);
		ctl.hcxt = CurTransactionContext;
		seen = hash_create("presence batch", 256, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		initStringInfo(&buf);
		PushActiveSnapshot(GetTransactionSnapshot());

		/*
		 * After NOTIFY refused: a full queue frees space only when its tail
		 * advances, which PostgreSQL does when a notifying transaction
		 * crosses a page boundary (none can, the queue being full) or when
		 * the queue's usage is asked for.  Ask, so that the space a stuck
		 * listener held comes back once it is gone.
		 */
		if (stalled)
			(void) DirectFunctionCall1(pg_notification_queue_usage, (Datum) 0);
		dlist_foreach(it, &held)
		{
			LocalEvent *e = dlist_container(LocalEvent, node, it.cur);
			const char *payload = e->payload;
			uint64		hash;
			bool		found;

			if (payload == NULL)
			{
				PresenceBuildBulkPayload(&buf, e->room, e->added, e->removed);
				payload = buf.data;
			}
			hash = hash_bytes_extended((const unsigned char *) payload, strlen(payload), 0);
			(void) hash_search(seen, &hash, HASH_ENTER, &found);
			if (found || count >= SEND_BATCH)
				break;
			Async_Notify(e->channel, payload);
			count++;
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
		last_send = GetCurrentTimestamp();
	}
	PG_CATCH();
	{
		/*
		 * NOTIFY's queue is full: keep them.  Anything else: drop the
		 * events of this transaction (none of them was sent) and have every
		 * room re-read, so that a poison event cannot block the rest.
		 */
		ok = !Failed("events");
		if (ok)
			DropHeld(count + 1);
		count = 0;
	}
	PG_END_TRY();

	for (int i = 0; i < count && !dlist_is_empty(&held); i++)
		Release(dlist_head_element(LocalEvent, node, &held));
	return ok;
}

/* ResyncRoom sends, on channel, a bulk_change (counts 0: re-read) for room. */
static void
ResyncRoom(StringInfo buf, const char *channel, const char *room)
{
	PresenceBuildBulkPayload(buf, room, 0, 0);
	Async_Notify(channel, buf->data);
}

/*
 * SendResync sends a bulk_change for every room (listeners re-read them
 * all), after events were dropped.  Returns false if NOTIFY refused.
 */
static bool
SendResync(void)
{
	volatile bool ok = true;

	StartTransactionCommand();
	PG_TRY();
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		if (stalled)			/* see SendBatch */
			(void) DirectFunctionCall1(pg_notification_queue_usage, (Datum) 0);
		if (OidIsValid(get_extension_oid("presence", true)))
		{
			StringInfoData buf;

			initStringInfo(&buf);
			SPI_connect();
			SPI_execute("SELECT name FROM presence.rooms ORDER BY name", true, 0);
			for (uint64 i = 0; i < SPI_processed; i++)
				ResyncRoom(&buf, presence_notify_channel,
						   SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
			SPI_finish();
		}
		if (dropped != NULL)
		{
			HASH_SEQ_STATUS seq;
			char	   *key;
			StringInfoData buf;

			initStringInfo(&buf);
			hash_seq_init(&seq, dropped);
			while ((key = hash_seq_search(&seq)) != NULL)
			{
				char	   *sep = strchr(key, '\x01');

				*sep = '\0';
				ResyncRoom(&buf, key, sep + 1);
				*sep = '\x01';
			}
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
		ereport(LOG,
				(errmsg("presence: events were dropped while NOTIFY was blocked; sent a bulk_change for every room")));
	}
	PG_CATCH();
	{
		ok = !Failed("the re-announcement of every room");
	}
	PG_END_TRY();
	if (ok)
	{
		need_resync = false;
		if (dropped != NULL)
			hash_destroy(dropped);
		dropped = NULL;
	}
	return ok;
}

/* SendHeld sends what the worker holds, unless NOTIFY refuses (then waits). */
static void
SendHeld(void)
{
	if (stalled && GetCurrentTimestamp() < retry_at)
		return;
	if ((need_resync && !SendResync()) ||
		(!dlist_is_empty(&held) && !SendBatch()))
	{
		stalled = true;
		retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RETRY_MS);
		return;
	}
	while (!dlist_is_empty(&held) && !got_sigterm)
	{
		if (!SendBatch())
		{
			stalled = true;
			retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RETRY_MS);
			return;
		}
	}
	if (stalled)
		ereport(LOG, (errmsg("presence: NOTIFY accepts events again")));
	stalled = false;
	folded_warned = false;
}

/*
 * Detach leaves the slot when the worker exits on an error: no worker, so
 * that the next writer (or the postmaster, after bgw_restart_time) starts
 * one; what is queued stays.
 */
static void
Detach(int code, Datum arg)
{
	if (slot == NULL)
		return;
	/* An error may have left the slot lock held (no transaction releases it). */
	LWLockReleaseAll();
	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	if (slot->worker_pid == MyProcPid)
	{
		slot->worker_pid = 0;
		slot->latch = NULL;
		slot->start_requested = 0;
		/* What it held is lost: the next worker re-announces every room. */
		if (!dlist_is_empty(&held) || need_resync)
			slot->overflow = true;
	}
	LWLockRelease(slot->lock);
	ConditionVariableBroadcast(&slot->sent_cv);
}

/*
 * TryExit decides, under the locks writers reserve with, whether the worker
 * may exit: when asked to (its database is to be dropped or renamed), or
 * when nothing is pending.  With nothing pending it also frees the slot;
 * a writer that reserved meanwhile keeps it busy, and one that comes after
 * claims a slot and starts a worker.
 */
static bool
TryExit(bool idle_expired)
{
	bool		exit_now;

	LWLockAcquire(event_shared->assign_lock, LW_EXCLUSIVE);
	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	{
		bool		nothing = slot->head == slot->tail && !slot->overflow &&
			dlist_is_empty(&held) && !need_resync;

		exit_now = slot->exit_requested || (idle_expired && nothing) || got_sigterm;
		if (exit_now)
		{
			slot->worker_pid = 0;
			slot->latch = NULL;
			slot->start_requested = 0;
			slot->exit_requested = false;
			if (nothing)
				slot->dboid = InvalidOid;
			/* Held events go with us: the next worker re-announces every room. */
			else if (!dlist_is_empty(&held) || need_resync)
				slot->overflow = true;
		}
	}
	LWLockRelease(slot->lock);
	LWLockRelease(event_shared->assign_lock);
	if (exit_now)
		ConditionVariableBroadcast(&slot->sent_cv);
	return exit_now;
}

/* Attach takes slot index for database dboid; false if it is not ours any more. */
static bool
Attach(int index, Oid dboid)
{
	bool		ours;

	slot = &event_shared->slots[index];
	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	ours = slot->dboid == dboid && (slot->worker_pid == 0 || slot->worker_pid == MyProcPid);
	if (ours)
	{
		slot->worker_pid = MyProcPid;
		slot->latch = MyLatch;
		slot->start_requested = 0;
	}
	LWLockRelease(slot->lock);
	if (!ours)
		slot = NULL;
	return ours;
}

/* IdleExpired tells whether the worker has waited idle long enough to exit. */
static bool
IdleExpired(TimestampTz idle_since)
{
	return presence_worker_idle_timeout_ms > 0 && dlist_is_empty(&held) && !need_resync &&
		TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(),
								   presence_worker_idle_timeout_ms);
}

/* presence_worker_main is the worker's entry point; arg is its slot index. */
void
presence_worker_main(Datum arg)
{
	TimestampTz idle_since = GetCurrentTimestamp();

	memcpy(&my_dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	pqsignal(SIGTERM, WorkerSigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	if (event_shared == NULL || !Attach(DatumGetInt32(arg), my_dboid))
		proc_exit(0);
	before_shmem_exit(Detach, (Datum) 0);
	BackgroundWorkerInitializeConnectionByOid(my_dboid, InvalidOid, BGWORKER_BYPASS_ALLOWCONN);
	pgstat_report_appname("presence events");
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "presence worker",
									   ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		uint64		before = drained_upto;
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		Drain();
		SendHeld();
		UpdateSent();
		if (drained_upto != before || !dlist_is_empty(&held))
			idle_since = GetCurrentTimestamp();

		if (TryExit(IdleExpired(idle_since)))
			break;

		timeout = stalled ? RETRY_MS :
			presence_worker_idle_timeout_ms > 0 ? presence_worker_idle_timeout_ms : -1;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (timeout >= 0 ? WL_TIMEOUT : 0),
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if (!stalled && last_send != 0 &&
			!TimestampDifferenceExceeds(last_send, GetCurrentTimestamp(), BUSY_MS))
			pg_usleep(LINGER_US);
	}
	proc_exit(0);
}
