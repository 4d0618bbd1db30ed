/*-------------------------------------------------------------------------
 *
 * events.h
 *		Declarations shared by the event files: events.c (the triggers and
 *		sending), event_pending.c (what is waiting to be sent),
 *		event_payload.c (the JSON) and event_sign.c (the signature).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PRESENCE_EVENTS_H
#define PRESENCE_EVENTS_H

#include "presence.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "lib/stringinfo.h"

/* NOTIFY refuses payloads of this many bytes or more (async.c). */
#define NOTIFY_PAYLOAD_LIMIT 8000

typedef enum ChangeKind
{
	CHANGE_ADDED,
	CHANGE_REMOVED,
	CHANGE_UPDATED
} ChangeKind;

/*
 * One event, as the payload writer needs it: either a single change of one
 * presence, or a bulk_change with counts.
 */
typedef struct PresenceEvent
{
	const char *room;
	bool		bulk;
	int64		added_count;	/* bulk only */
	int64		removed_count;	/* bulk only */
	ChangeKind	kind;			/* single only, and below */
	const char *channel;
	const char *user_id;		/* NULL: anonymous */
	Jsonb	   *meta;			/* NULL: see meta_null / meta_omitted */
	bool		meta_null;		/* meta is SQL NULL */
	bool		meta_omitted;	/* meta is not NULL but not kept */
	bool		flag;			/* user_joined / user_left */
	bool		pruned;			/* made by prune() or prune_job() */
} PresenceEvent;

/* What one statement (or one prune) did to one room, until it is sent. */
typedef struct RoomChanges
{
	char	   *room;			/* hash key: points at a string of our own */
	int64		added;
	int64		removed;
	int64		updated;
	bool		pruned;
	/* The first change, kept while it is the only one. */
	ChangeKind	kind;
	char	   *channel;
	char	   *user_id;
	Jsonb	   *meta;
	bool		meta_null;
	bool		meta_omitted;
} RoomChanges;

/* event_pending.c */
extern void PendingRecord(ChangeKind kind, HeapTuple tuple, TupleDesc tupdesc);
extern bool PendingAny(void);
extern bool PendingDeferred(void);
extern RoomChanges **PendingTake(int *nrooms, MemoryContext *cxt);
extern Jsonb *PendingMetaCopy(Datum meta, bool *omitted);
extern void PendingMetaForget(Jsonb *meta);
extern void PresenceEventsRegisterCallbacks(void);
extern int	PendingPayloadSeen(const char *body, int len);

/* event_payload.c */
extern void PresenceBuildPayload(StringInfo buf, const PresenceEvent *ev);
extern void PresenceBuildBulkPayload(StringInfo buf, const char *room,
									 int64 added, int64 removed);

/* event_sign.c */
extern void PresenceSignPayload(StringInfo buf);

/* events.c */
extern void PresenceEmit(const char *payload, const PresenceEvent *ev);

#endif							/* PRESENCE_EVENTS_H */
