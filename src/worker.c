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

/* ReleaseAll frees every held event. */
static void
ReleaseAll(void)
{
	while (!dlist_is_empty(&held))
		Release(dlist_head_element(LocalEvent, node, &held));
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
		if (!need_resync)
		{
			room = palloc(h.room_len + 1);
			payload = palloc(plen + 1);
			RingRead(slot, at + sizeof(h), channel, Min(h.channel_len, NAMEDATALEN));
			channel[Min(h.channel_len, NAMEDATALEN)] = '\0';
			RingRead(slot, at + sizeof(h) + h.channel_len, room, h.room_len);
			room[h.room_len] = '\0';
			RingRead(slot, at + sizeof(h) + h.channel_len + h.room_len, payload, plen);
			payload[plen] = '\0';
			Hold(channel, room, h.added, h.removed, payload, pos);
			pfree(room);
			pfree(payload);
		}
		at += h.len;
	}

	if (held_bytes > Bound())
		Fold();
	if (held_bytes > Bound())
	{
		/* Too many rooms even folded: re-announce them all later. */
		ReleaseAll();
		need_resync = true;
	}
}

/* Drain moves the published records of the ring into the worker's memory. */
static void
Drain(void)
{
	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	if (slot->overflow)
	{
		slot->overflow = false;
		need_resync = true;
		ReleaseAll();
	}
	while (slot->tail < slot->head)
	{
		RecordHeader rec;

		RingRead(slot, slot->tail, &rec, sizeof(rec));
		if (rec.state == RECORD_RESERVED)
			break;				/* its transaction is committing */
		if (rec.state == RECORD_PUBLISHED)
			HoldRecord(slot->tail, &rec);
		slot->tail += rec.len;
	}
	drained_upto = slot->tail;
	LWLockRelease(slot->lock);
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

/* BulkPayload writes into buf the bulk_change event of e. */
static void
BulkPayload(StringInfo buf, LocalEvent *e)
{
	PresenceEvent ev;

	memset(&ev, 0, sizeof(ev));
	ev.room = e->room;
	ev.bulk = true;
	ev.added_count = e->added;
	ev.removed_count = e->removed;
	PresenceBuildPayload(buf, &ev);
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
				BulkPayload(&buf, e);
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
		/* NOTIFY's queue is full: keep them.  Anything else: drop them. */
		ok = !Failed("events");
		count = ok ? count + 1 : 0;
	}
	PG_END_TRY();

	for (int i = 0; i < count && !dlist_is_empty(&held); i++)
		Release(dlist_head_element(LocalEvent, node, &held));
	return ok;
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
			{
				PresenceEvent ev;

				memset(&ev, 0, sizeof(ev));
				ev.room = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
				ev.bulk = true;
				PresenceBuildPayload(&buf, &ev);
				Async_Notify(presence_notify_channel, buf.data);
			}
			SPI_finish();
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
		need_resync = false;
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
	LWLockAcquire(slot->lock, LW_EXCLUSIVE);
	if (slot->worker_pid == MyProcPid)
	{
		slot->worker_pid = 0;
		slot->latch = NULL;
		slot->start_requested = 0;
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
	BackgroundWorkerInitializeConnectionByOid(my_dboid, InvalidOid, 0);
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
