--
-- cron: schedule_prune() and unschedule_prune() manage one pg_cron job,
-- presence-prune.  The test instance preloads pg_cron with
-- cron.database_name = this database (test/presence.conf).
--
\set VERBOSITY default
\set regress_db :DBNAME

-- pg_cron runs in this server but its extension is not created here yet:
-- an error that says what to run, and nothing scheduled.
SELECT presence.schedule_prune();
SELECT presence.unschedule_prune();

CREATE EXTENSION pg_cron;

-- Scheduling creates the job, in this database, running prune and
-- prune_rooms ...
SELECT presence.schedule_prune() > 0 AS scheduled;
SELECT jobname, schedule, command, database = current_database() AS here, active
FROM cron.job;

-- ... and scheduling again replaces it: still one job, same id.
SELECT presence.schedule_prune('*/5 * * * *') = jobid AS same_job FROM cron.job;
SELECT count(*) AS jobs, min(schedule) AS schedule FROM cron.job;

-- Bad schedules are refused and change nothing.
SELECT presence.schedule_prune(NULL);
SELECT presence.schedule_prune('');
SELECT presence.schedule_prune('every 30 seconds');
SELECT count(*) AS jobs, min(schedule) AS schedule FROM cron.job;

-- Unscheduling removes it; a second time there is nothing to remove.
SELECT presence.unschedule_prune();
SELECT presence.unschedule_prune();
SELECT count(*) AS jobs FROM cron.job;

-- From another database of the cluster, where pg_cron does not run: the
-- hint gives the call to make from the cron database.
CREATE DATABASE presence_test_other;
\c presence_test_other
CREATE EXTENSION presence;
SELECT presence.schedule_prune('*/2 * * * *');
\c :regress_db
DROP DATABASE presence_test_other;

DROP EXTENSION pg_cron;
