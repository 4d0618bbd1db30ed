/*-------------------------------------------------------------------------
 *
 * prune.c
 *		prune() deletes presences whose last_seen is older than max_age;
 *		prune_rooms() deletes rooms nobody is in; prune_job() is the
 *		procedure the pg_cron job runs, both of them committing per batch.
 *
 * prune() walks the primary key (room, channel) in batches of at most
 * PRUNE_BATCH_SIZE rows, each batch one DELETE statement whose victims are
 * locked FOR UPDATE SKIP LOCKED: a row another transaction holds (a touch in
 * flight) is not stale and is not waited for.  Its events never wait either
 * (user_locks.c).  Events are deferred across batches, so each room gets one
 * event per prune.  The whole prune is one transaction: cancelled midway, it
 * deletes nothing, and the rows it deleted stay locked until it commits.
 *
 * prune_job() runs the same batches, but commits after each one (and after
 * each batch of prune_rooms), so the rows it holds are one batch's; a
 * touch of a presence it already pruned never waits for the rest.  A
 * procedure that commits cannot be SECURITY DEFINER, so it calls the
 * SECURITY DEFINER steps prune_batch() and prune_rooms_batch().
 *
 * prune_rooms() must not delete a room an add() is joining at the same
 * moment (the add would lose its presence to ON DELETE CASCADE).  add()
 * holds a FOR KEY SHARE lock on the room from before it inserts until it
 * commits; prune_rooms() locks candidate rooms FOR UPDATE SKIP LOCKED
 * (skipping rooms being joined) and then re-checks emptiness in a new
 * statement, whose snapshot sees every join that committed before the lock.
 *
 * Counts are integers (the API's return type): a call deletes at most
 * 2^31 - 1 presences or rooms and says exactly how many; a later call
 * deletes the rest.
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* Rows per DELETE statement of prune(), rooms per batch of prune_rooms(). */
#define PRUNE_BATCH_SIZE 10000

/* Where a walk along a key stands, and what its last batch did. */
typedef struct PruneStep
{
	Datum		after[2];		/* resume after this key (room, channel) */
	int			deleted;
	int			locked;
	bool		done;			/* nothing left after the key */
} PruneStep;

/*
 * PruneCutoff returns now() - max_age (NULL: presence.max_age), refusing a
 * max_age that puts the cutoff in the future.  The cutoff itself is checked,
 * not the interval: '-1 year 360 days 1 second' compares as one second but
 * moves now() five days ahead.
 */
static TimestampTz
PruneCutoff(FunctionCallInfo fcinfo, int argno)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Interval   *max_age;
	TimestampTz cutoff;

	if (PG_ARGISNULL(argno))
	{
		max_age = palloc0(sizeof(Interval));
		max_age->time = (int64) presence_max_age_s * USECS_PER_SEC;
	}
	else
		max_age = PG_GETARG_INTERVAL_P(argno);

	cutoff = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													 TimestampTzGetDatum(now),
													 IntervalPGetDatum(max_age)));
	if (cutoff > now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_age must not be negative"),
				 errdetail("max_age was %s, which puts the cutoff after now().",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(max_age))))));
	return cutoff;
}

/* RowText returns column col of row i of SPI_tuptable as a text datum. */
static Datum
RowText(uint64 i, int col)
{
	bool		isnull;

	return SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, col, &isnull);
}

/*
 * PruneBatch deletes one batch of at most limit stale presences after
 * step->after, and moves step->after past them.  Call inside SPI; the key
 * is copied into cxt.  A full batch that spans several rooms leaves its
 * last room, whole, for the next batch.
 */
static void
PruneBatch(PruneStep *step, TimestampTz cutoff, int limit, MemoryContext cxt)
{
	Datum		values[4] = {step->after[0], step->after[1],
	TimestampTzGetDatum(cutoff), Int32GetDatum(limit)};
	Datum		del[2];
	Datum	   *tids;
	uint64		n;
	uint64		take;
	bool		trim;
	MemoryContext oldcxt;

	CHECK_FOR_INTERRUPTS();
	step->deleted = 0;
	n = PresenceExec(STMT_PRUNE_LOCK, values, NULL, false, 0);
	step->locked = (int) n;
	step->done = n < (uint64) limit;
	if (n == 0)
		return;

	/* The rows of the last room, when the batch is full and not one room. */
	trim = !step->done && !PresenceTextEqual(RowText(0, 2), RowText(n - 1, 2));
	take = n;
	while (trim && take > 0 && PresenceTextEqual(RowText(take - 1, 2), RowText(n - 1, 2)))
		take--;

	MemoryContextReset(cxt);
	oldcxt = MemoryContextSwitchTo(cxt);
	tids = palloc(take * sizeof(Datum));
	for (uint64 i = 0; i < take; i++)
	{
		ItemPointer tid = palloc(sizeof(ItemPointerData));

		ItemPointerCopy((ItemPointer) DatumGetPointer(RowText(i, 1)), tid);
		tids[i] = PointerGetDatum(tid);
	}
	del[0] = PointerGetDatum(construct_array(tids, (int) take, TIDOID,
											 sizeof(ItemPointerData), false,
											 TYPALIGN_SHORT));
	del[1] = TimestampTzGetDatum(cutoff);
	/* Resume at the start of the trimmed room ('' sorts first), or after the last row. */
	step->after[0] = datumCopy(RowText(n - 1, 2), false, -1);
	step->after[1] = trim ? CStringGetTextDatum("") : datumCopy(RowText(n - 1, 3), false, -1);
	MemoryContextSwitchTo(oldcxt);
	SPI_freetuptable(SPI_tuptable);

	step->deleted = PresenceExec(STMT_PRUNE_DELETE, del, NULL, false, 0);
}

/*
 * PruneRoomsBatch deletes one batch of rooms without presences after
 * step->after[0] (a name), and moves it past them.  Call inside SPI.
 */
static void
PruneRoomsBatch(PruneStep *step, int limit, MemoryContext cxt)
{
	Datum		values[2] = {step->after[0], Int32GetDatum(limit)};
	Datum	   *names;
	Datum		del[1];
	bool		isnull;
	int			n;
	MemoryContext oldcxt;

	CHECK_FOR_INTERRUPTS();
	step->deleted = 0;
	/* Rooms that look empty, locked unless an add() holds them. */
	n = step->locked = PresenceExec(STMT_PRUNE_ROOMS_LOCK, values, NULL, false, 0);
	step->done = n < limit;
	if (n == 0)
		return;

	MemoryContextReset(cxt);
	oldcxt = MemoryContextSwitchTo(cxt);
	names = palloc(n * sizeof(Datum));
	for (int i = 0; i < n; i++)
		names[i] = datumCopy(SPI_getbinval(SPI_tuptable->vals[i],
										   SPI_tuptable->tupdesc, 1, &isnull),
							 false, -1);
	del[0] = PointerGetDatum(construct_array(names, n, TEXTOID, -1, false,
											 TYPALIGN_INT));
	step->after[0] = names[n - 1];
	MemoryContextSwitchTo(oldcxt);
	SPI_freetuptable(SPI_tuptable);

	/* A new snapshot, taken under the locks: still empty? */
	step->deleted = PresenceExec(STMT_PRUNE_ROOMS_DELETE, del, NULL, false, 0);
}

/* StartStep sets step to walk from the beginning ('' sorts first). */
static void
StartStep(PruneStep *step)
{
	step->after[0] = CStringGetTextDatum("");
	step->after[1] = CStringGetTextDatum("");
	step->deleted = step->locked = 0;
	step->done = false;
}

/* BatchLimit returns the batch size that keeps a total of done under 2^31. */
static int
BatchLimit(int64 done)
{
	return (int) Min((int64) PRUNE_BATCH_SIZE, (int64) PG_INT32_MAX - done);
}

PG_FUNCTION_INFO_V1(presence_prune);

/*
 * presence_prune deletes presences whose last_seen is older than max_age
 * (NULL: presence.max_age) and returns how many it deleted.
 */
Datum
presence_prune(PG_FUNCTION_ARGS)
{
	TimestampTz cutoff = PruneCutoff(fcinfo, 0);
	MemoryContext cxt;
	PruneStep	step;
	int64		total = 0;

	(void) PresenceSchema();
	SPI_connect();
	cxt = AllocSetContextCreate(CurrentMemoryContext, "presence prune batch",
								ALLOCSET_DEFAULT_SIZES);
	StartStep(&step);
	PresenceEventsDefer();
	while (!step.done && BatchLimit(total) > 0)
	{
		PruneBatch(&step, cutoff, BatchLimit(total), cxt);
		total += step.deleted;
	}
	PresenceEventsResume();
	SPI_finish();

	PG_RETURN_INT32((int32) total);
}

PG_FUNCTION_INFO_V1(presence_prune_rooms);

/* presence_prune_rooms deletes rooms without presences; returns how many. */
Datum
presence_prune_rooms(PG_FUNCTION_ARGS)
{
	MemoryContext cxt;
	PruneStep	step;
	int64		total = 0;

	(void) PresenceSchema();
	SPI_connect();
	cxt = AllocSetContextCreate(CurrentMemoryContext, "presence prune_rooms batch",
								ALLOCSET_DEFAULT_SIZES);
	StartStep(&step);
	while (!step.done && BatchLimit(total) > 0)
	{
		PruneRoomsBatch(&step, BatchLimit(total), cxt);
		total += step.deleted;
	}
	SPI_finish();

	PG_RETURN_INT32((int32) total);
}

/* ReturnStep returns the composite result (deleted, locked, next...) of a step. */
static Datum
ReturnStep(FunctionCallInfo fcinfo, PruneStep *step, int nkeys)
{
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "presence: a prune step must return a row");
	desc = BlessTupleDesc(desc);
	values[0] = Int32GetDatum(step->deleted);
	values[1] = Int32GetDatum(step->locked);
	for (int k = 0; k < nkeys; k++)
	{
		values[2 + k] = step->after[k];
		nulls[2 + k] = step->done;	/* NULL key: nothing left */
	}
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

PG_FUNCTION_INFO_V1(presence_prune_batch);

/*
 * presence_prune_batch is one step of prune_job(): it deletes one batch of
 * presences older than cutoff after the key (after_room, after_channel)
 * and returns (deleted, locked, next_room, next_channel), the next key
 * NULL when nothing is left.
 */
Datum
presence_prune_batch(PG_FUNCTION_ARGS)
{
	TimestampTz cutoff;
	PruneStep	step;
	Datum		result;
	MemoryContext cxt;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cutoff, after_room and after_channel must not be null")));
	cutoff = PG_GETARG_TIMESTAMPTZ(0);
	if (cutoff > GetCurrentTransactionStartTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cutoff must not be after now()")));

	(void) PresenceSchema();
	cxt = AllocSetContextCreate(CurrentMemoryContext, "presence prune batch",
								ALLOCSET_DEFAULT_SIZES);
	StartStep(&step);
	step.after[0] = PG_GETARG_DATUM(1);
	step.after[1] = PG_GETARG_DATUM(2);
	SPI_connect();
	PresenceEventsDefer();
	PruneBatch(&step, cutoff, PRUNE_BATCH_SIZE, cxt);
	PresenceEventsResume();
	SPI_finish();
	result = ReturnStep(fcinfo, &step, 2);
	MemoryContextDelete(cxt);
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(presence_prune_rooms_batch);

/*
 * presence_prune_rooms_batch is one step of prune_job(): it deletes one
 * batch of empty rooms after after_name and returns (deleted, locked,
 * next_name), next_name NULL when nothing is left.
 */
Datum
presence_prune_rooms_batch(PG_FUNCTION_ARGS)
{
	PruneStep	step;
	Datum		result;
	MemoryContext cxt;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("after_name must not be null")));

	(void) PresenceSchema();
	cxt = AllocSetContextCreate(CurrentMemoryContext, "presence prune_rooms batch",
								ALLOCSET_DEFAULT_SIZES);
	StartStep(&step);
	step.after[0] = PG_GETARG_DATUM(0);
	SPI_connect();
	PruneRoomsBatch(&step, PRUNE_BATCH_SIZE, cxt);
	SPI_finish();
	result = ReturnStep(fcinfo, &step, 1);
	MemoryContextDelete(cxt);
	PG_RETURN_DATUM(result);
}

/*
 * JobSteps runs stmt (a step of prune_job) until it says nothing is left,
 * committing after each step unless atomic.  values[first_key..] hold the
 * key to resume after; the step's result columns 3.. give the next one.
 */
static void
JobSteps(PresenceStmt stmt, Datum *values, int first_key, int nkeys, bool atomic)
{
	/* SPI's procedure context, which lives across the commits. */
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "presence prune_job",
											  ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		bool		isnull;
		HeapTuple	row;
		MemoryContext oldcxt;

		CHECK_FOR_INTERRUPTS();
		PresenceExec(stmt, values, NULL, false, 0);
		row = SPI_tuptable->vals[0];
		(void) SPI_getbinval(row, SPI_tuptable->tupdesc, 3, &isnull);
		if (isnull)
			break;
		MemoryContextReset(cxt);
		oldcxt = MemoryContextSwitchTo(cxt);
		for (int k = 0; k < nkeys; k++)
			values[first_key + k] = datumCopy(SPI_getbinval(row, SPI_tuptable->tupdesc,
															3 + k, &isnull),
											  false, -1);
		MemoryContextSwitchTo(oldcxt);
		SPI_freetuptable(SPI_tuptable);
		if (!atomic)
			SPI_commit();
	}
	if (!atomic)
		SPI_commit();
	MemoryContextDelete(cxt);
}

PG_FUNCTION_INFO_V1(presence_prune_job);

/*
 * presence_prune_job is the procedure the pg_cron job CALLs: prune(max_age)
 * and then prune_rooms(), committing after every batch.  Called inside a
 * transaction block (where it may not commit) it does the same in the
 * caller's transaction.
 */
Datum
presence_prune_job(PG_FUNCTION_ARGS)
{
	bool		atomic = !(fcinfo->context != NULL && IsA(fcinfo->context, CallContext) &&
						   !castNode(CallContext, fcinfo->context)->atomic);
	TimestampTz cutoff = PruneCutoff(fcinfo, 0);
	Datum		values[3];

	SPI_connect_ext(atomic ? 0 : SPI_OPT_NONATOMIC);

	values[0] = TimestampTzGetDatum(cutoff);
	values[1] = CStringGetTextDatum("");
	values[2] = CStringGetTextDatum("");
	JobSteps(STMT_PRUNE_JOB_BATCH, values, 1, 2, atomic);

	values[0] = CStringGetTextDatum("");
	JobSteps(STMT_PRUNE_JOB_ROOMS_BATCH, values, 0, 1, atomic);

	SPI_finish();
	PG_RETURN_VOID();
}
