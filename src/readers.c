/*-------------------------------------------------------------------------
 *
 * readers.c
 *		The functions that read presence: members, users, anonymous_count,
 *		rooms_of and stats.  Each is one prepared statement on one index
 *		(see plans.c); set-returning ones materialize its rows.
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include "funcapi.h"
#include "utils/tuplestore.h"

/*
 * ReturnRows runs stmt with arg (a room or a channel) and hands every row it
 * returns to the caller as this set-returning function's result.
 */
static Datum
ReturnRows(FunctionCallInfo fcinfo, PresenceStmt stmt, text *arg, bits32 flags)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[1] = {PointerGetDatum(arg)};
	int			natts;
	Datum	   *row;
	bool	   *isnull;
	int			n;

	(void) PresenceSchema();
	InitMaterializedSRF(fcinfo, flags);
	natts = rsinfo->setDesc->natts;
	row = palloc(natts * sizeof(Datum));
	isnull = palloc(natts * sizeof(bool));

	SPI_connect();
	n = PresenceExec(stmt, values, NULL, true, 0);
	if (SPI_tuptable != NULL && SPI_tuptable->tupdesc->natts != natts)
		elog(ERROR, "presence: a reader returns %d columns, its statement %d",
			 natts, SPI_tuptable->tupdesc->natts);
	for (int i = 0; i < n; i++)
	{
		for (int a = 0; a < natts; a++)
			row[a] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								   a + 1, &isnull[a]);
		/* The tuplestore copies the values into its own memory. */
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, isnull);
	}
	SPI_finish();

	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(presence_members);

/* presence_members returns the presences of room, ordered by channel. */
Datum
presence_members(PG_FUNCTION_ARGS)
{
	return ReturnRows(fcinfo, STMT_MEMBERS,
					  PresenceArgName(fcinfo, 0, "room"), 0);
}

PG_FUNCTION_INFO_V1(presence_users);

/* presence_users returns the distinct non-NULL user_ids present in room. */
Datum
presence_users(PG_FUNCTION_ARGS)
{
	return ReturnRows(fcinfo, STMT_USERS,
					  PresenceArgName(fcinfo, 0, "room"),
					  MAT_SRF_USE_EXPECTED_DESC);
}

PG_FUNCTION_INFO_V1(presence_rooms_of);

/* presence_rooms_of returns the rooms channel is in. */
Datum
presence_rooms_of(PG_FUNCTION_ARGS)
{
	return ReturnRows(fcinfo, STMT_ROOMS_OF,
					  PresenceArgName(fcinfo, 0, "channel"),
					  MAT_SRF_USE_EXPECTED_DESC);
}

PG_FUNCTION_INFO_V1(presence_stats);

/*
 * presence_stats returns one row: connections, distinct users and anonymous
 * connections of room; zeros for a room nobody is in.
 */
Datum
presence_stats(PG_FUNCTION_ARGS)
{
	return ReturnRows(fcinfo, STMT_STATS,
					  PresenceArgName(fcinfo, 0, "room"), 0);
}

PG_FUNCTION_INFO_V1(presence_anonymous_count);

/* presence_anonymous_count returns how many presences of room have no user_id. */
Datum
presence_anonymous_count(PG_FUNCTION_ARGS)
{
	Datum		values[1];
	bool		isnull;
	int64		count;

	values[0] = PointerGetDatum(PresenceArgName(fcinfo, 0, "room"));
	(void) PresenceSchema();

	SPI_connect();
	PresenceExec(STMT_ANONYMOUS_COUNT, values, NULL, true, 0);
	count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(count);
}
