/*-------------------------------------------------------------------------
 *
 * presence.h
 *		Declarations shared by the files of the presence extension.
 *
 * presence.c      module magic, settings (GUCs)
 * validate.c      argument checks: the one place bad input is rejected
 * plans.c         every SQL statement the extension runs, prepared once
 * membership.c    add, remove, leave_all, touch, update
 * readers.c       members, users, anonymous_count, rooms_of, stats
 * events.c        triggers that NOTIFY every change of presences
 * lookup.c        direct index scans on the hot paths (touch, events)
 * prune.c         prune, prune_rooms
 * cron.c          schedule_prune, unschedule_prune (pg_cron)
 * compat.h        what differs between PostgreSQL 13 to 17
 *
 *-------------------------------------------------------------------------
 */
#ifndef PRESENCE_H
#define PRESENCE_H

#include "postgres.h"

#include "compat.h"				/* differences between PostgreSQL versions */
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/timestamp.h"

/* Longest room, channel or user_id, in characters (DESIGN.md section 3). */
#define PRESENCE_NAME_MAX_CHARS 255

/* Settings (presence.c). */
extern int	presence_max_age_s;
extern int	presence_touch_interval_ms;
extern bool presence_notify;
extern char *presence_notify_channel;

/* validate.c */
extern text *PresenceArgName(FunctionCallInfo fcinfo, int argno,
							 const char *argname);
extern text *PresenceArgUserId(FunctionCallInfo fcinfo, int argno,
							   const char *argname);

/* plans.c: statements, in the order of the table in plans.c. */
typedef enum PresenceStmt
{
	STMT_ROOM_LOCK,
	STMT_ROOM_CREATE,
	STMT_PRESENCE_INSERT,
	STMT_PRESENCE_REJOIN,
	STMT_PRESENCE_REJOIN_META,
	STMT_PRESENCE_OWNER,
	STMT_REMOVE,
	STMT_LEAVE_ALL,
	STMT_TOUCH_WRITE,
	STMT_TOUCH_WRITE_ALL,
	STMT_UPDATE,
	STMT_MEMBERS,
	STMT_USERS,
	STMT_ANONYMOUS_COUNT,
	STMT_ROOMS_OF,
	STMT_STATS,
	STMT_ALL_PRESENCES,
	STMT_PRUNE_BATCH,
	STMT_PRUNE_ROOMS_LOCK,
	STMT_PRUNE_ROOMS_DELETE,
	STMT_CRON_SCHEDULE,
	STMT_CRON_UNSCHEDULE,
	STMT_COUNT					/* number of statements, not a statement */
} PresenceStmt;

extern int	PresenceExec(PresenceStmt stmt, Datum *values, const char *nulls,
						 bool read_only, long limit);

/* lookup.c */
extern void PresenceTouchRead(text *channel, TimestampTz cutoff,
							  int *count, int *stale);
extern bool PresenceUserElsewhere(const char *room, const char *user_id,
								  const char *channel);

/* events.c */
extern void PresenceEventsSend(bool force);
extern void PresenceEventsDefer(void);
extern void PresenceEventsResume(void);
extern void PresenceEventsSendIfLarge(void);

#endif							/* PRESENCE_H */
