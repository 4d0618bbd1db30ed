/*-------------------------------------------------------------------------
 *
 * prune.c
 *		prune() deletes presences whose last_seen is older than max_age;
 *		prune_rooms() deletes rooms nobody is in.
 *
 * prune() walks the primary key (room, channel) in batches of at most
 * PRUNE_BATCH_SIZE rows, each batch one DELETE statement whose victims are
 * locked FOR UPDATE SKIP LOCKED: a row another transaction holds (a touch in
 * flight) is not stale and is not waited for.  Events are deferred across
 * batches, so each room gets one event per prune, not one per batch.  The
 * whole prune is one transaction: cancelled midway, it deletes nothing.
 *
 * prune_rooms() must not delete a room an add() is joining at the same
 * moment (the add would lose its presence to ON DELETE CASCADE).  add()
 * holds a FOR KEY SHARE lock on the room from before it inserts until it
 * commits; prune_rooms() locks candidate rooms FOR UPDATE SKIP LOCKED
 * (skipping rooms being joined) and then re-checks emptiness in a new
 * statement, whose snapshot sees every join that committed before the lock.
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* Rows per DELETE statement of prune(), rooms per batch of prune_rooms(). */
#define PRUNE_BATCH_SIZE 10000

/* PruneCutoff returns now() - max_age, refusing a negative max_age. */
static TimestampTz
PruneCutoff(FunctionCallInfo fcinfo)
{
	Interval   *max_age;
	Interval	zero = {0};

	if (PG_ARGISNULL(0))
	{
		max_age = palloc0(sizeof(Interval));
		max_age->time = (int64) presence_max_age_s * USECS_PER_SEC;
	}
	else
		max_age = PG_GETARG_INTERVAL_P(0);

	if (DatumGetBool(DirectFunctionCall2(interval_lt,
										 IntervalPGetDatum(max_age),
										 IntervalPGetDatum(&zero))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_age must not be negative"),
				 errdetail("max_age was %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(max_age))))));

	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
												   TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
												   IntervalPGetDatum(max_age)));
}

PG_FUNCTION_INFO_V1(presence_prune);

/*
 * presence_prune deletes presences whose last_seen is older than max_age
 * (NULL: presence.max_age) and returns how many it deleted.
 */
Datum
presence_prune(PG_FUNCTION_ARGS)
{
	TimestampTz cutoff = PruneCutoff(fcinfo);
	MemoryContext batch_cxt;
	MemoryContext oldcxt;
	Datum		values[4];
	int64		total = 0;

	/* Resume after the last row of the previous batch; '' sorts first. */
	values[0] = CStringGetTextDatum("");
	values[1] = CStringGetTextDatum("");
	values[2] = TimestampTzGetDatum(cutoff);
	values[3] = Int32GetDatum(PRUNE_BATCH_SIZE);

	SPI_connect();
	batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "presence prune batch",
									  ALLOCSET_DEFAULT_SIZES);
	PresenceEventsDefer();
	for (;;)
	{
		int64		deleted;
		int			locked;
		bool		isnull;
		HeapTuple	last;

		CHECK_FOR_INTERRUPTS();
		if (PresenceExec(STMT_PRUNE_BATCH, values, NULL, false, 0) == 0)
			break;				/* no stale row left after the key */

		last = SPI_tuptable->vals[0];
		deleted = DatumGetInt64(SPI_getbinval(last, SPI_tuptable->tupdesc, 1, &isnull));
		locked = DatumGetInt32(SPI_getbinval(last, SPI_tuptable->tupdesc, 2, &isnull));
		total += deleted;

		/* Keep the resume key; forget the previous batch's. */
		MemoryContextReset(batch_cxt);
		oldcxt = MemoryContextSwitchTo(batch_cxt);
		values[0] = datumCopy(SPI_getbinval(last, SPI_tuptable->tupdesc, 3, &isnull), false, -1);
		values[1] = datumCopy(SPI_getbinval(last, SPI_tuptable->tupdesc, 4, &isnull), false, -1);
		MemoryContextSwitchTo(oldcxt);
		SPI_freetuptable(SPI_tuptable);

		if (locked < PRUNE_BATCH_SIZE)
			break;				/* the scan reached the end of the table */
		PresenceEventsSendIfLarge();
	}
	PresenceEventsResume();
	SPI_finish();

	PG_RETURN_INT32((int32) Min(total, PG_INT32_MAX));
}

PG_FUNCTION_INFO_V1(presence_prune_rooms);

/* presence_prune_rooms deletes rooms without presences; returns how many. */
Datum
presence_prune_rooms(PG_FUNCTION_ARGS)
{
	MemoryContext batch_cxt;
	MemoryContext oldcxt;
	Datum		values[2];
	int64		total = 0;

	values[0] = CStringGetTextDatum("");
	values[1] = Int32GetDatum(PRUNE_BATCH_SIZE);

	SPI_connect();
	batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "presence prune_rooms batch",
									  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		int			n;
		Datum	   *names;
		Datum		del[1];
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		/* Rooms that look empty, locked unless an add() holds them. */
		n = PresenceExec(STMT_PRUNE_ROOMS_LOCK, values, NULL, false, 0);
		if (n == 0)
			break;

		MemoryContextReset(batch_cxt);
		oldcxt = MemoryContextSwitchTo(batch_cxt);
		names = palloc(n * sizeof(Datum));
		for (int i = 0; i < n; i++)
			names[i] = datumCopy(SPI_getbinval(SPI_tuptable->vals[i],
											   SPI_tuptable->tupdesc, 1, &isnull),
								 false, -1);
		del[0] = PointerGetDatum(construct_array(names, n, TEXTOID, -1, false,
												 TYPALIGN_INT));
		values[0] = names[n - 1];
		MemoryContextSwitchTo(oldcxt);
		SPI_freetuptable(SPI_tuptable);

		/* A new snapshot, taken under the locks: still empty? */
		total += PresenceExec(STMT_PRUNE_ROOMS_DELETE, del, NULL, false, 0);

		if (n < PRUNE_BATCH_SIZE)
			break;
	}
	SPI_finish();

	PG_RETURN_INT32((int32) Min(total, PG_INT32_MAX));
}
