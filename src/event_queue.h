/*-------------------------------------------------------------------------
 *
 * event_queue.h
 *		The shared memory of the worker transport: one ring of events per
 *		database slot, written by event_queue.c, read by worker.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PRESENCE_EVENT_QUEUE_H
#define PRESENCE_EVENT_QUEUE_H

#include "events.h"

#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

/* A record: the events of one committed transaction. */
#define RECORD_RESERVED 1		/* being filled; its transaction is committing */
#define RECORD_PUBLISHED 2		/* committed: send it */
#define RECORD_ABORTED 3		/* rolled back after reserving: skip it */

typedef struct RecordHeader
{
	uint32		len;			/* bytes of the record, header included */
	uint32		state;
	uint32		nevents;
	uint32		pad;
} RecordHeader;

/* An event inside a record, followed by channel, room and payload bytes. */
typedef struct EntryHeader
{
	uint32		len;			/* bytes of the entry, header included */
	uint16		channel_len;
	uint16		room_len;
	int64		added;			/* what it did to the room, for folding */
	int64		removed;
} EntryHeader;

/* One database's ring and the state of its worker. */
typedef struct EventSlot
{
	int			index;
	LWLock	   *lock;			/* protects everything below */
	Oid			dboid;			/* InvalidOid: free */
	int			worker_pid;		/* 0: no worker attached */
	Latch	   *latch;			/* the worker's, while attached */
	TimestampTz start_requested;
	bool		exit_requested; /* the database is to be dropped or renamed */
	bool		overflow;		/* a writer found the ring full */
	uint64		head;			/* next position to reserve */
	uint64		tail;			/* next position the worker reads */
	uint64		sent_upto;		/* events before this position are sent */
	ConditionVariable sent_cv;	/* broadcast when sent_upto moves */
} EventSlot;

typedef struct EventShared
{
	LWLock	   *assign_lock;	/* protects slot assignment (dboid) */
	int			nslots;
	Size		ring_size;
	EventSlot	slots[FLEXIBLE_ARRAY_MEMBER];
	/* the rings follow, MAXALIGNed */
} EventShared;

extern EventShared *event_shared;
extern bool presence_preloaded;
extern int	presence_queue_size_kb;
extern int	presence_max_databases;
extern int	presence_worker_idle_timeout_ms;

extern void EventQueueInit(void);
extern EventSlot *EventQueueSlot(Oid dboid, bool claim);
extern void EventQueueAdd(const char *payload, const PresenceEvent *ev);
extern void RingWrite(EventSlot *slot, uint64 pos, const void *data, Size len);
extern void RingRead(EventSlot *slot, uint64 pos, void *data, Size len);

#endif							/* PRESENCE_EVENT_QUEUE_H */
