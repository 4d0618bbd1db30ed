/*-------------------------------------------------------------------------
 *
 * cron.c
 *		schedule_prune() and unschedule_prune(): the one pg_cron job, named
 *		presence-prune, that runs prune() and prune_rooms() in this database.
 *
 * pg_cron is optional: the extension installs without it, and these two
 * functions explain what to do when it is missing (not installed, not
 * preloaded, or living in another database of the cluster).
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include "commands/extension.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

/* RequirePgCron errors out, saying what to do, unless pg_cron is in this database. */
static void
RequirePgCron(const char *schedule)
{
	const char *cron_db;
	const char *this_db;

	if (OidIsValid(get_extension_oid("pg_cron", true)))
		return;

	cron_db = GetConfigOption("cron.database_name", true, false);
	this_db = get_database_name(MyDatabaseId);

	if (cron_db == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_cron is not installed"),
				 errdetail("presence schedules its prune with pg_cron, which this server does not load."),
				 errhint("Install pg_cron (on Debian: apt-get install postgresql-15-cron), set shared_preload_libraries = 'pg_cron' and cron.database_name = %s, restart PostgreSQL, then run CREATE EXTENSION pg_cron in that database.",
						 quote_literal_cstr(this_db))));

	if (strcmp(cron_db, this_db) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_cron is not installed in database %s",
						quote_identifier(this_db)),
				 errdetail("pg_cron runs in database %s (cron.database_name).",
						   quote_identifier(cron_db)),
				 errhint("Connect to database %s and run: SELECT cron.schedule_in_database('presence-prune-%s', %s, 'SELECT presence.prune(); SELECT presence.prune_rooms()', %s);",
						 quote_identifier(cron_db), this_db,
						 quote_literal_cstr(schedule),
						 quote_literal_cstr(this_db))));

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("extension pg_cron is not created in this database"),
			 errhint("Run CREATE EXTENSION pg_cron; in database %s.",
					 quote_identifier(this_db))));
}

PG_FUNCTION_INFO_V1(presence_schedule_prune);

/*
 * presence_schedule_prune creates or replaces the presence-prune job with
 * the given cron schedule and returns its job id.  pg_cron replaces a job
 * of the same name and user, so calling it twice leaves one job.
 */
Datum
presence_schedule_prune(PG_FUNCTION_ARGS)
{
	text	   *schedule = PresenceArgName(fcinfo, 0, "schedule");
	Datum		values[1] = {PointerGetDatum(schedule)};
	bool		isnull;
	int64		jobid;

	RequirePgCron(text_to_cstring(schedule));

	SPI_connect();
	PresenceExec(STMT_CRON_SCHEDULE, values, NULL, false, 0);
	jobid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(jobid);
}

PG_FUNCTION_INFO_V1(presence_unschedule_prune);

/* presence_unschedule_prune removes the presence-prune job; false if there was none. */
Datum
presence_unschedule_prune(PG_FUNCTION_ARGS)
{
	int			n;

	RequirePgCron("* * * * *");

	SPI_connect();
	n = PresenceExec(STMT_CRON_UNSCHEDULE, NULL, NULL, false, 0);
	SPI_finish();
	PG_RETURN_BOOL(n > 0);
}
