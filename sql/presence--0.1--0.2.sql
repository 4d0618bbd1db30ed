\echo Use "ALTER EXTENSION presence UPDATE TO '0.2'" to load this file. \quit

-- presence 0.1 -> 0.2.
--
-- Brings a 0.1 installation to what sql/presence.sql creates in 0.2:
-- test/sql/upgrade.sql compares the two object by object (functions, their
-- settings and privileges, tables, indexes, constraints, triggers, comments),
-- so anything sql/presence.sql adds or changes in 0.2 must be done here too.
-- Runs as one transaction inside ALTER EXTENSION, on live data: presences,
-- rooms, the GRANTs made to application roles and a pg_cron job scheduled by
-- presence.schedule_prune() must all survive it.
