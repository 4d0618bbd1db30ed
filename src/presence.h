/*-------------------------------------------------------------------------
 *
 * presence.h
 *		Declarations shared by the files of the presence extension.
 *
 * presence.c        module magic, settings (GUCs)
 * validate.c        argument checks: the one place bad input is rejected
 * schema.c          the table and index definitions the C code relies on
 * plans.c           every SQL statement the extension runs, prepared once
 * membership.c      add, remove, leave_all, touch, update
 * readers.c         members, users, anonymous_count, rooms_of, stats
 * lookup.c          direct index scans on the hot paths (touch, events)
 * user_locks.c      the (room, user) locks that make user_joined/user_left exact
 * events.c          the triggers that announce every change of presences
 * event_pending.c   the changes a statement made, per room, until sent
 * event_payload.c   the JSON payload of an event
 * event_sign.c      the event key and the payload signature
 * event_queue.c     worker mode: the shared queue and the writers' side
 * worker.c          worker mode: the background worker that sends events
 * prune.c           prune, prune_rooms, prune_job
 * cron.c            schedule_prune, unschedule_prune (pg_cron)
 * compat.h          what differs between PostgreSQL 13 to 17
 *
 *-------------------------------------------------------------------------
 */
#ifndef PRESENCE_H
#define PRESENCE_H

#include "postgres.h"

#include "compat.h"				/* differences between PostgreSQL versions */
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* Longest room, channel or user_id, in characters (DESIGN.md section 3). */
#define PRESENCE_NAME_MAX_CHARS 255

/* Settings (presence.c). */
extern int	presence_max_age_s;
extern int	presence_touch_interval_ms;
extern bool presence_notify;
extern char *presence_notify_channel;
extern int	presence_max_meta_size;
extern char *presence_origin;
extern bool presence_sign_events;
extern bool presence_event_meta;

extern int	PresenceTouchIntervalMs(void);

/* validate.c */
extern text *PresenceArgName(FunctionCallInfo fcinfo, int argno,
							 const char *argname);
extern text *PresenceArgUserId(FunctionCallInfo fcinfo, int argno,
							   const char *argname);
extern Jsonb *PresenceArgMeta(FunctionCallInfo fcinfo, int argno);
extern bool PresenceTextEqual(Datum a, Datum b);

/* schema.c: what the C code relies on about the extension's relations. */
typedef struct PresenceSchemaInfo
{
	bool		valid;
	Oid			presences;
	Oid			rooms;
	Oid			event_key;
	Oid			channel_idx;	/* presences (channel, room) */
	Oid			room_user_idx;	/* presences (room, user_id) */
	AttrNumber	room_att;
	AttrNumber	channel_att;
	AttrNumber	user_id_att;
	AttrNumber	meta_att;
	AttrNumber	last_seen_att;
	AttrNumber	key_att;		/* event_key.key */
} PresenceSchemaInfo;

extern PresenceSchemaInfo *PresenceSchema(void);

/* plans.c: statements, each with its SQL in the table of plans.c. */
typedef enum PresenceStmt
{
	STMT_ROOM_LOCK,
	STMT_ROOM_CREATE,
	STMT_PRESENCE_INSERT,
	STMT_PRESENCE_REJOIN,
	STMT_PRESENCE_REJOIN_META,
	STMT_PRESENCE_OWNER,
	STMT_REMOVE,
	STMT_LEAVE_ALL_LOCK,
	STMT_LEAVE_ALL,
	STMT_TOUCH_WRITE,
	STMT_TOUCH_WRITE_ALL,
	STMT_UPDATE,
	STMT_MEMBERS,
	STMT_USERS,
	STMT_ANONYMOUS_COUNT,
	STMT_ROOMS_OF,
	STMT_STATS,
	STMT_TRUNCATE_SCAN,
	STMT_PRUNE_LOCK,
	STMT_PRUNE_DELETE,
	STMT_PRUNE_ROOMS_LOCK,
	STMT_PRUNE_ROOMS_DELETE,
	STMT_PRUNE_JOB_BATCH,
	STMT_PRUNE_JOB_ROOMS_BATCH,
	STMT_CRON_SCHEDULE,
	STMT_CRON_UNSCHEDULE,
	STMT_ROTATE_KEY,
	STMT_COUNT					/* number of statements, not a statement */
} PresenceStmt;

extern int	PresenceExec(PresenceStmt stmt, Datum *values, const char *nulls,
						 bool read_only, long limit);
extern Portal PresenceOpenCursor(PresenceStmt stmt, Datum *values,
								 const char *nulls, bool read_only);

/* lookup.c */
typedef struct PresenceMembership
{
	char	   *room;
	char	   *user_id;		/* NULL: anonymous */
} PresenceMembership;

extern int	PresenceTouchRead(text *channel, TimestampTz cutoff, int *stale,
							  bool now_enough);
extern int	PresenceChannelCount(text *channel);
extern List *PresenceChannelMemberships(text *channel);
extern bool PresenceOwner(text *room, text *channel, char **user_id);
extern bool PresenceUserElsewhere(const char *room, const char *user_id,
								  const char *channel);

/* user_locks.c */
extern bool PresenceUserLock(const char *room, const char *user_id, bool wait);

/* event_pending.c: deferral of events across prune()'s batches. */
extern void PresenceEventsDefer(void);
extern void PresenceEventsResume(void);

/* events.c */
extern void PresenceEventsSend(bool force);

#endif							/* PRESENCE_H */
