/*-------------------------------------------------------------------------
 *
 * plans.c
 *		Every SQL statement the extension runs, in one table, each prepared
 *		once per backend (SPI_prepare + SPI_keepplan) on first use.
 *
 * The SQL is written so that no caller's search_path can change what it
 * means: tables are schema-qualified, and operators and functions are
 * pg_catalog's, spelled out.  On top of that, every statement is prepared
 * and run with search_path pinned to pg_catalog alone (an override search
 * path), whatever the calling function's settings: the membership functions,
 * the hot paths, pin it here rather than with a SET clause, whose per-call
 * settings work would cost more than touch() itself.  The plan cache re-plans a kept statement when
 * the tables behind it change (DROP and CREATE EXTENSION included).
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"

/* Shorthands that keep the statements below readable. */
#define EQ " OPERATOR(pg_catalog.=) "
#define LT " OPERATOR(pg_catalog.<) "
#define NOW "pg_catalog.now()"

typedef struct PresenceStmtDef
{
	const char *sql;
	int			nargs;
	Oid			argtypes[4];
} PresenceStmtDef;

static const PresenceStmtDef stmt_defs[] = {
	/*
	 * add(): lock the room against prune_rooms() for the rest of the
	 * transaction (KEY SHARE does not block other joiners), or create it.
	 */
	[STMT_ROOM_LOCK] = {
		"SELECT 1 FROM presence.rooms WHERE name" EQ "$1 FOR KEY SHARE",
		1, {TEXTOID}
	},
	[STMT_ROOM_CREATE] = {
		"INSERT INTO presence.rooms (name) VALUES ($1) ON CONFLICT DO NOTHING",
		1, {TEXTOID}
	},
	[STMT_PRESENCE_INSERT] = {
		"INSERT INTO presence.presences (room, channel, user_id, meta)"
		" VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
		4, {TEXTOID, TEXTOID, TEXTOID, JSONBOID}
	},
	/* add() again: refresh last_seen (and meta), same user only. */
	[STMT_PRESENCE_REJOIN] = {
		"UPDATE presence.presences SET last_seen = " NOW
		" WHERE room" EQ "$1 AND channel" EQ "$2"
		" AND (user_id" EQ "$3 OR (user_id IS NULL AND $3 IS NULL))",
		3, {TEXTOID, TEXTOID, TEXTOID}
	},
	[STMT_PRESENCE_REJOIN_META] = {
		"UPDATE presence.presences SET last_seen = " NOW ", meta = $4"
		" WHERE room" EQ "$1 AND channel" EQ "$2"
		" AND (user_id" EQ "$3 OR (user_id IS NULL AND $3 IS NULL))",
		4, {TEXTOID, TEXTOID, TEXTOID, JSONBOID}
	},
	[STMT_PRESENCE_OWNER] = {
		"SELECT user_id FROM presence.presences"
		" WHERE room" EQ "$1 AND channel" EQ "$2",
		2, {TEXTOID, TEXTOID}
	},
	[STMT_REMOVE] = {
		"DELETE FROM presence.presences WHERE room" EQ "$1 AND channel" EQ "$2",
		2, {TEXTOID, TEXTOID}
	},

	/*
	 * leave_all(): lock the channel's rows in room order first (the order
	 * in which transactions that join several rooms take them, so the two
	 * do not deadlock), then delete them in a statement of its own, whose
	 * new snapshot sees the versions a concurrent touch or update wrote
	 * while we waited for their locks.
	 */
	[STMT_LEAVE_ALL_LOCK] = {
		"SELECT 1 FROM presence.presences WHERE channel" EQ "$1"
		" ORDER BY room FOR UPDATE",
		1, {TEXTOID}
	},
	[STMT_LEAVE_ALL] = {
		"DELETE FROM presence.presences WHERE channel" EQ "$1",
		1, {TEXTOID}
	},

	/*
	 * touch(): the read is a direct index scan (lookup.c); the write
	 * refreshes only presences older than the cutoff, or all of them with
	 * touch_interval 0.
	 */
	[STMT_TOUCH_WRITE] = {
		"UPDATE presence.presences SET last_seen = " NOW
		" WHERE channel" EQ "$1 AND last_seen" LT "$2",
		2, {TEXTOID, TIMESTAMPTZOID}
	},
	[STMT_TOUCH_WRITE_ALL] = {
		"UPDATE presence.presences SET last_seen = " NOW
		" WHERE channel" EQ "$1",
		1, {TEXTOID}
	},
	[STMT_UPDATE] = {
		"UPDATE presence.presences SET meta = $3, last_seen = " NOW
		" WHERE room" EQ "$1 AND channel" EQ "$2",
		3, {TEXTOID, TEXTOID, JSONBOID}
	},

	/* Readers: one room's rows through the primary key or the user index. */
	[STMT_MEMBERS] = {
		"SELECT channel, user_id, meta, joined_at, last_seen"
		" FROM presence.presences WHERE room" EQ "$1 ORDER BY channel",
		1, {TEXTOID}
	},
	[STMT_USERS] = {
		"SELECT DISTINCT user_id FROM presence.presences"
		" WHERE room" EQ "$1 AND user_id IS NOT NULL ORDER BY user_id",
		1, {TEXTOID}
	},
	[STMT_ANONYMOUS_COUNT] = {
		"SELECT pg_catalog.count(*) FROM presence.presences"
		" WHERE room" EQ "$1 AND user_id IS NULL",
		1, {TEXTOID}
	},
	[STMT_ROOMS_OF] = {
		"SELECT room FROM presence.presences WHERE channel" EQ "$1 ORDER BY room",
		1, {TEXTOID}
	},
	[STMT_STATS] = {
		"SELECT pg_catalog.count(*), pg_catalog.count(DISTINCT user_id),"
		" pg_catalog.count(*) FILTER (WHERE user_id IS NULL)"
		" FROM presence.presences WHERE room" EQ "$1",
		1, {TEXTOID}
	},

	/* Events: what a TRUNCATE removes, room by room (read with a cursor). */
	[STMT_TRUNCATE_SCAN] = {
		"SELECT room, channel, user_id, meta FROM presence.presences"
		" ORDER BY room, channel",
		0, {InvalidOid}
	},

	/*
	 * prune(): one batch, in two statements.  The first takes victims in
	 * primary key order after the key ($1, $2) and locks them, skipping
	 * rows other transactions hold; prune.c then leaves a full batch's last
	 * room for the next batch (one event per room and batch, unless one
	 * room alone has more stale presences than a batch).  The second
	 * deletes them by ctid (a TID scan), with a new snapshot that sees the
	 * versions the lock returned, if they are still stale.
	 */
	[STMT_PRUNE_LOCK] = {
		"SELECT ctid, room, channel FROM presence.presences"
		" WHERE ROW(room, channel) OPERATOR(pg_catalog.>) ROW($1, $2)"
		" AND last_seen" LT "$3"
		" ORDER BY room, channel LIMIT $4"
		" FOR UPDATE SKIP LOCKED",
		4, {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID}
	},
	[STMT_PRUNE_DELETE] = {
		"DELETE FROM presence.presences"
		" WHERE ctid" EQ "ANY ($1) AND last_seen" LT "$2",
		2, {TIDARRAYOID, TIMESTAMPTZOID}
	},

	/*
	 * prune_rooms(): lock rooms that look empty (as of this statement),
	 * skipping those an add() holds; then delete those still empty as of a
	 * new snapshot.
	 */
	[STMT_PRUNE_ROOMS_LOCK] = {
		"SELECT r.name FROM presence.rooms r"
		" WHERE r.name OPERATOR(pg_catalog.>) $1"
		" AND NOT EXISTS (SELECT 1 FROM presence.presences p"
		"                 WHERE p.room" EQ "r.name)"
		" ORDER BY r.name LIMIT $2"
		" FOR UPDATE OF r SKIP LOCKED",
		2, {TEXTOID, INT4OID}
	},
	[STMT_PRUNE_ROOMS_DELETE] = {
		"DELETE FROM presence.rooms r"
		" WHERE r.name" EQ "ANY ($1)"
		" AND NOT EXISTS (SELECT 1 FROM presence.presences p"
		"                 WHERE p.room" EQ "r.name)",
		1, {TEXTARRAYOID}
	},

	/* prune_job(): one batch each, through the SECURITY DEFINER steps. */
	[STMT_PRUNE_JOB_BATCH] = {
		"SELECT deleted, locked, next_room, next_channel"
		" FROM presence.prune_batch($1, $2, $3)",
		3, {TIMESTAMPTZOID, TEXTOID, TEXTOID}
	},
	[STMT_PRUNE_JOB_ROOMS_BATCH] = {
		"SELECT deleted, locked, next_name FROM presence.prune_rooms_batch($1)",
		1, {TEXTOID}
	},

	/* pg_cron: prepared only after cron.c checked that pg_cron is here. */
	[STMT_CRON_SCHEDULE] = {
		"SELECT cron.schedule('presence-prune', $1, 'CALL presence.prune_job()')",
		1, {TEXTOID}
	},
	[STMT_CRON_UNSCHEDULE] = {
		"SELECT cron.unschedule(jobid) FROM cron.job"
		" WHERE jobname" EQ "'presence-prune'",
		0, {InvalidOid}
	},

	/* rotate_event_key() */
	[STMT_ROTATE_KEY] = {
		"INSERT INTO presence.event_key (key) VALUES ($1)"
		" ON CONFLICT (singleton) DO UPDATE"
		" SET key = EXCLUDED.key, rotated_at = " NOW,
		1, {BYTEAOID}
	},
};

StaticAssertDecl(lengthof(stmt_defs) == STMT_COUNT,
				 "every PresenceStmt needs its entry in stmt_defs");

/* Kept plans, one per statement, prepared on first use. */
static SPIPlanPtr plans[STMT_COUNT];

/* PresencePlan returns the kept plan of stmt, preparing it on first use. */
static SPIPlanPtr
PresencePlan(PresenceStmt stmt)
{
	const PresenceStmtDef *def = &stmt_defs[stmt];

	if (plans[stmt] == NULL)
	{
		SPIPlanPtr	plan;

		if (def->sql == NULL)
			elog(ERROR, "presence: statement %d has no SQL", (int) stmt);
		plan = SPI_prepare(def->sql, def->nargs, (Oid *) def->argtypes);
		if (plan == NULL)
			elog(ERROR, "presence: SPI_prepare failed for \"%s\": %s",
				 def->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "presence: SPI_keepplan failed");
		plans[stmt] = plan;
	}
	return plans[stmt];
}

/*
 * PresenceExec runs stmt with the given arguments inside an SPI connection
 * the caller opened, and returns the number of rows processed (results are
 * in SPI_tuptable).  nulls uses SPI's convention: ' ' not null, 'n' null.
 */
int
PresenceExec(PresenceStmt stmt, Datum *values, const char *nulls,
			 bool read_only, long limit)
{
	PresenceSearchPathPin pin;
	int			rc;

	/* Unpinned below, or by the (sub)transaction abort on error (compat.h). */
	pin = PresencePinSearchPath();
	rc = SPI_execute_plan(PresencePlan(stmt), values, nulls, read_only, limit);
	PresenceUnpinSearchPath(pin);
	if (rc < 0)
		elog(ERROR, "presence: \"%s\" failed: %s",
			 stmt_defs[stmt].sql, SPI_result_code_string(rc));
	return (int) SPI_processed;
}

/*
 * PresenceOpenCursor opens a cursor for stmt (a query) inside an SPI
 * connection the caller opened; the caller fetches and closes it.
 */
Portal
PresenceOpenCursor(PresenceStmt stmt, Datum *values, const char *nulls,
				   bool read_only)
{
	PresenceSearchPathPin pin;
	Portal		portal;

	pin = PresencePinSearchPath();
	portal = SPI_cursor_open(NULL, PresencePlan(stmt), values, nulls, read_only);
	PresenceUnpinSearchPath(pin);
	return portal;
}
