--
-- 00_install: CREATE EXTENSION, what it creates, and DROP EXTENSION.
-- This file runs first (file names sort), so it also installs presence for
-- the tests that follow.
--

-- presence does not need pg_cron at CREATE time: the test instance preloads
-- pg_cron, but this database has no pg_cron extension.
SELECT count(*) AS pg_cron_installed FROM pg_extension WHERE extname = 'pg_cron';

-- Count the catalog rows before the first CREATE EXTENSION, to check below
-- that DROP EXTENSION takes everything away again.
SELECT (SELECT count(*) FROM pg_namespace)   AS namespaces,
       (SELECT count(*) FROM pg_class)       AS classes,
       (SELECT count(*) FROM pg_attribute)   AS attributes,
       (SELECT count(*) FROM pg_attrdef)     AS attrdefs,
       (SELECT count(*) FROM pg_type)        AS types,
       (SELECT count(*) FROM pg_proc)        AS procs,
       (SELECT count(*) FROM pg_constraint)  AS constraints,
       (SELECT count(*) FROM pg_index)       AS indexes,
       (SELECT count(*) FROM pg_trigger)     AS triggers,
       (SELECT count(*) FROM pg_depend)      AS depends,
       (SELECT count(*) FROM pg_shdepend)    AS shdepends,
       (SELECT count(*) FROM pg_description) AS descriptions,
       (SELECT count(*) FROM pg_init_privs)  AS init_privs,
       (SELECT count(*) FROM pg_extension)   AS extensions
\gset before_

CREATE EXTENSION presence;

-- Not relocatable: its objects always live in the schema presence ...
SELECT extname, extversion, extrelocatable
FROM pg_extension
WHERE extname = 'presence';

-- ... which the extension creates and owns ('e': a member of the extension).
SELECT pg_describe_object(classid, objid, objsubid) AS object, deptype
FROM pg_depend
WHERE classid = 'pg_namespace'::regclass
  AND objid = 'presence'::regnamespace
  AND refclassid = 'pg_extension'::regclass;

-- Everything it created: the schema, two tables, the API, the trigger
-- functions.
\dx+ presence

-- The tables.  presences is keyed by (room, channel); touch, leave_all and
-- rooms_of find a channel by presences_channel_idx, the readers find a room
-- by the primary key or presences_room_user_idx.  last_seen is in no index,
-- so that touch() can be a HOT update.
\d presence.rooms
\d presence.presences
SELECT c.relname, c.reloptions
FROM pg_class c
WHERE c.relnamespace = 'presence'::regnamespace AND c.relkind = 'r'
ORDER BY c.relname;

-- The functions, with their signatures and return types (DESIGN.md section 4).
\df presence.*

-- None is STRICT: a NULL argument must reach the function and be rejected
-- with an error (see validation), not silently return NULL.  Readers are
-- STABLE, functions that change presence are VOLATILE.
SELECT p.oid::regprocedure AS function, p.proisstrict AS strict,
       p.provolatile AS volatility
FROM pg_proc p
WHERE p.pronamespace = 'presence'::regnamespace
ORDER BY p.proname;

-- The schema, every table and every function has a COMMENT (none is
-- listed here).
SELECT 'schema presence' AS object_without_comment
WHERE obj_description('presence'::regnamespace, 'pg_namespace') IS NULL
UNION ALL
SELECT c.oid::regclass::text
FROM pg_class c
WHERE c.relnamespace = 'presence'::regnamespace AND c.relkind = 'r'
  AND obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT p.oid::regprocedure::text
FROM pg_proc p
WHERE p.pronamespace = 'presence'::regnamespace
  AND obj_description(p.oid, 'pg_proc') IS NULL;

-- Use the API once, so this session holds prepared plans on the tables that
-- are about to be dropped.
SELECT presence.add('install', 'c1', 'ann');
SELECT * FROM presence.stats('install');

DROP EXTENSION presence;

-- Nothing is left behind: no schema, no tables, types, functions, triggers,
-- constraints, comments, dependencies or initial privileges.
SELECT to_regnamespace('presence') IS NULL AS no_schema,
       NOT EXISTS (SELECT FROM pg_proc WHERE probin LIKE '%presence%') AS no_c_functions,
       NOT EXISTS (SELECT FROM pg_type WHERE typname IN ('rooms', 'presences')) AS no_row_types;
SELECT (SELECT count(*) FROM pg_namespace)   = :before_namespaces   AS namespaces,
       (SELECT count(*) FROM pg_class)       = :before_classes      AS classes,
       (SELECT count(*) FROM pg_attribute)   = :before_attributes   AS attributes,
       (SELECT count(*) FROM pg_attrdef)     = :before_attrdefs     AS attrdefs,
       (SELECT count(*) FROM pg_type)        = :before_types        AS types,
       (SELECT count(*) FROM pg_proc)        = :before_procs        AS procs,
       (SELECT count(*) FROM pg_constraint)  = :before_constraints  AS constraints,
       (SELECT count(*) FROM pg_index)       = :before_indexes      AS indexes,
       (SELECT count(*) FROM pg_trigger)     = :before_triggers     AS triggers,
       (SELECT count(*) FROM pg_depend)      = :before_depends      AS depends,
       (SELECT count(*) FROM pg_shdepend)    = :before_shdepends    AS shdepends,
       (SELECT count(*) FROM pg_description) = :before_descriptions AS descriptions,
       (SELECT count(*) FROM pg_init_privs)  = :before_init_privs   AS init_privs,
       (SELECT count(*) FROM pg_extension)   = :before_extensions   AS extensions;

-- The schema belongs to the extension, so CREATE EXTENSION does not take
-- over a schema presence that already exists.
CREATE SCHEMA presence;
CREATE EXTENSION presence;
DROP SCHEMA presence;

-- Install again for the tests that follow.  The plans this session prepared
-- before the DROP are re-planned against the new tables.
CREATE EXTENSION presence;
SELECT presence.add('install', 'c1', 'ann');
SELECT * FROM presence.stats('install');
SELECT channel, user_id FROM presence.members('install');

-- Leave the database empty for the next test.
SELECT presence.leave_all('c1');
DELETE FROM presence.rooms;
