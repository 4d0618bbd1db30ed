/*-------------------------------------------------------------------------
 *
 * cron.c
 *		schedule_prune() and unschedule_prune(): the one pg_cron job, named
 *		presence-prune, that runs CALL presence.prune_job() (prune and
 *		prune_rooms, committing per batch) in this database.
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

/*
 * RequirePgCron errors out, saying what to do, unless pg_cron is usable in
 * this database.  unschedule tells which of the two functions asks, so that
 * the hint gives the matching pg_cron call.
 */
static void
RequirePgCron(const char *schedule, bool unschedule)
{
	const char *cron_db = GetConfigOption("cron.database_name", true, false);
	const char *this_db = get_database_name(MyDatabaseId);
	bool		created = OidIsValid(get_extension_oid("pg_cron", true));
	char	   *jobname;

	/*
	 * pg_cron's library is loaded only through shared_preload_libraries; a
	 * cron.database_name in postgresql.conf without it is a placeholder.
	 */
	if (cron_db == NULL ||
		(GetConfigOptionFlags("cron.database_name", true) & GUC_CUSTOM_PLACEHOLDER) != 0)
	{
		if (created)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("pg_cron is not loaded"),
					 errdetail("Extension pg_cron exists in this database, but the server was started without pg_cron in shared_preload_libraries."),
					 errhint("Add pg_cron to shared_preload_libraries (with cron.database_name = %s) and restart PostgreSQL.",
							 quote_literal_cstr(this_db))));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_cron is not installed"),
				 errdetail("presence schedules its prune with pg_cron, which this server does not load."),
				 errhint("Install pg_cron (on Debian: apt-get install postgresql-15-cron), set shared_preload_libraries = 'pg_cron' and cron.database_name = %s, restart PostgreSQL, then run CREATE EXTENSION pg_cron in that database.",
						 quote_literal_cstr(this_db))));
	}

	if (created)
		return;

	if (strcmp(cron_db, this_db) != 0)
	{
		jobname = quote_literal_cstr(psprintf("presence-prune-%s", this_db));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_cron is not installed in database %s",
						quote_identifier(this_db)),
				 errdetail("pg_cron runs in database %s (cron.database_name).",
						   quote_identifier(cron_db)),
				 unschedule ?
				 errhint("Connect to database %s and run: SELECT cron.unschedule(%s);",
						 quote_identifier(cron_db), jobname) :
				 errhint("Connect to database %s and run: SELECT cron.schedule_in_database(%s, %s, 'CALL presence.prune_job()', %s);",
						 quote_identifier(cron_db), jobname,
						 quote_literal_cstr(schedule),
						 quote_literal_cstr(this_db))));
	}

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

	RequirePgCron(text_to_cstring(schedule), false);

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

	RequirePgCron(NULL, true);

	SPI_connect();
	n = PresenceExec(STMT_CRON_UNSCHEDULE, NULL, NULL, false, 0);
	SPI_finish();
	PG_RETURN_BOOL(n > 0);
}
