--
-- upgrade: CREATE EXTENSION presence VERSION '0.1' with live data and an
-- application role's GRANTs, then ALTER EXTENSION presence UPDATE.  The
-- data and the GRANTs survive, and the updated extension is the same,
-- object by object, as a fresh CREATE EXTENSION of the current version.
--
-- The comparison reads the catalogs, so it holds for whatever the current
-- version contains: a change to sql/presence.sql that the upgrade script
-- does not repeat shows up below as a row of "what differs".
--

-- 00_install left the current version installed: start again from 0.1.
DROP EXTENSION presence;
CREATE EXTENSION presence VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'presence';

-- There is an update path from 0.1 to the default version.
SELECT e.default_version <> '0.1' AS newer_default,
       p.path IS NOT NULL AS has_update_path
FROM pg_available_extensions e
JOIN pg_extension_update_paths('presence') p
  ON p.source = '0.1' AND p.target = e.default_version
WHERE e.name = 'presence';

-- An application using 0.1: an app role with the README's GRANTs, rooms
-- and presences (one with meta, one anonymous).
CREATE ROLE regress_presence_upgrade_app;
CREATE TEMP TABLE app_grants (stmt text);
INSERT INTO app_grants VALUES
    ('GRANT USAGE ON SCHEMA presence TO regress_presence_upgrade_app'),
    ('GRANT EXECUTE ON FUNCTION
        presence.add(text, text, text, jsonb), presence.remove(text, text),
        presence.leave_all(text), presence.touch(text),
        presence.update(text, text, jsonb), presence.members(text),
        presence.users(text), presence.anonymous_count(text),
        presence.rooms_of(text), presence.stats(text)
      TO regress_presence_upgrade_app');
CREATE FUNCTION pg_temp.apply_app_grants() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT stmt FROM app_grants LOOP
        EXECUTE s;
    END LOOP;
END
$$;
SELECT pg_temp.apply_app_grants();

SET ROLE regress_presence_upgrade_app;
SELECT presence.add('upgrade', 'c1', 'ann', '{"status": "here"}');
SELECT presence.add('upgrade', 'c2', 'bob');
SELECT presence.add('upgrade', 'c3');
SELECT presence.add('other', 'c1', 'ann');
RESET ROLE;

-- What the extension consists of, as text that does not depend on OIDs, so
-- that two installations can be compared row by row.  One row per fact.
CREATE TEMP VIEW presence_objects (kind, object, fact) AS
WITH ext AS (
    SELECT oid, extnamespace FROM pg_extension WHERE extname = 'presence'
), nsp AS (
    SELECT oid FROM pg_namespace WHERE nspname = 'presence'
)
-- the extension itself: schema, relocatability, tables pg_dump dumps
SELECT 'extension', e.extname::text,
       format('schema %s relocatable %s config %s condition %s',
              e.extnamespace::regnamespace, e.extrelocatable,
              (SELECT array_agg(c::regclass::text ORDER BY c::regclass::text)
               FROM unnest(e.extconfig) c),
              e.extcondition)
FROM pg_extension e WHERE e.extname = 'presence'
UNION ALL
-- every member of the extension, wherever it lives
SELECT 'member', pg_describe_object(d.classid, d.objid, d.objsubid), ''
FROM pg_depend d, ext
WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
  AND d.deptype = 'e'
UNION ALL
-- the extension's initial privileges, which pg_dump compares against
SELECT 'init_privs', pg_describe_object(i.classoid, i.objoid, i.objsubid),
       format('%s %s', i.privtype, i.initprivs)
FROM pg_init_privs i, ext
WHERE EXISTS (SELECT FROM pg_depend d
              WHERE d.classid = i.classoid AND d.objid = i.objoid
                AND d.refclassid = 'pg_extension'::regclass
                AND d.refobjid = ext.oid AND d.deptype = 'e')
UNION ALL
-- the schema: owner, privileges, comment
SELECT 'schema', n.nspname::text,
       format('owner %s acl %s comment %s', n.nspowner::regrole, n.nspacl,
              obj_description(n.oid, 'pg_namespace'))
FROM pg_namespace n, nsp WHERE n.oid = nsp.oid
UNION ALL
-- tables, indexes, sequences, views: kind, options, privileges, comment
SELECT 'relation', c.relname::text,
       format('kind %s persistence %s options %s acl %s rls %s/%s owner %s comment %s',
              c.relkind, c.relpersistence, c.reloptions, c.relacl,
              c.relrowsecurity, c.relforcerowsecurity, c.relowner::regrole,
              obj_description(c.oid, 'pg_class'))
FROM pg_class c, nsp WHERE c.relnamespace = nsp.oid
UNION ALL
-- columns, in their order (dropped columns do not count)
SELECT 'column', format('%s.%s', c.relname, a.attname),
       format('position %s type %s not null %s default %s identity %s generated %s acl %s comment %s',
              row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
              format_type(a.atttypid, a.atttypmod), a.attnotnull,
              pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
              a.attacl, col_description(c.oid, a.attnum))
FROM pg_class c
JOIN nsp ON c.relnamespace = nsp.oid
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
-- constraints of tables and domains
SELECT 'constraint', format('%s.%s', coalesce(c.relname, t.typname), k.conname),
       format('%s deferrable %s/%s', pg_get_constraintdef(k.oid),
              k.condeferrable, k.condeferred)
FROM pg_constraint k
JOIN nsp ON k.connamespace = nsp.oid
LEFT JOIN pg_class c ON c.oid = k.conrelid
LEFT JOIN pg_type t ON t.oid = k.contypid
UNION ALL
-- indexes, as CREATE INDEX would write them
SELECT 'index', c.relname::text, pg_get_indexdef(c.oid)
FROM pg_class c, nsp WHERE c.relnamespace = nsp.oid AND c.relkind IN ('i', 'I')
UNION ALL
-- triggers, as CREATE TRIGGER would write them, and whether they are enabled
SELECT 'trigger', format('%s.%s', c.relname, t.tgname),
       format('%s enabled %s', pg_get_triggerdef(t.oid), t.tgenabled)
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN nsp ON c.relnamespace = nsp.oid
WHERE NOT t.tgisinternal
UNION ALL
-- rules and row security policies
SELECT 'rule', format('%s.%s', c.relname, r.rulename), pg_get_ruledef(r.oid)
FROM pg_rewrite r
JOIN pg_class c ON c.oid = r.ev_class
JOIN nsp ON c.relnamespace = nsp.oid
WHERE r.rulename <> '_RETURN'
UNION ALL
SELECT 'policy', format('%s.%s', c.relname, p.polname),
       format('%s %s %s using %s check %s', p.polcmd, p.polpermissive, p.polroles,
              pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN nsp ON c.relnamespace = nsp.oid
UNION ALL
-- types other than the tables' row types (enums, domains, composites)
SELECT 'type', t.typname::text,
       format('type %s base %s acl %s comment %s', t.typtype,
              format_type(t.typbasetype, t.typtypmod), t.typacl,
              obj_description(t.oid, 'pg_type'))
FROM pg_type t, nsp
WHERE t.typnamespace = nsp.oid
  AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
  AND t.typelem = 0
UNION ALL
-- functions and procedures: signature, result, language, C symbol, every
-- property that changes how they run, their settings, privileges, comment
SELECT 'function', p.oid::regprocedure::text,
       format('args %s returns %s kind %s language %s src %s bin %s '
              'security definer %s strict %s volatility %s parallel %s '
              'leakproof %s cost %s rows %s config %s owner %s acl %s comment %s',
              pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
              p.prokind, l.lanname,
              CASE WHEN l.lanname IN ('c', 'internal') THEN p.prosrc
                   ELSE md5(p.prosrc) END,
              p.probin, p.prosecdef, p.proisstrict, p.provolatile,
              p.proparallel, p.proleakproof, p.procost, p.prorows, p.proconfig,
              p.proowner::regrole, p.proacl, obj_description(p.oid, 'pg_proc'))
FROM pg_proc p
JOIN nsp ON p.pronamespace = nsp.oid
JOIN pg_language l ON l.oid = p.prolang;

-- The update.
ALTER EXTENSION presence UPDATE;
SELECT e.extversion = a.default_version AS at_default_version
FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
WHERE e.extname = 'presence';

-- The presences and rooms are still there, unchanged, and the app role can
-- still use the API with the GRANTs it had.
SELECT room, channel, user_id, meta FROM presence.presences ORDER BY room, channel;
SET ROLE regress_presence_upgrade_app;
SELECT presence.touch('c1');
SELECT * FROM presence.stats('upgrade');
SELECT presence.update('upgrade', 'c2', '{"status": "away"}');
SELECT channel, user_id, meta FROM presence.members('upgrade');
SELECT presence.remove('upgrade', 'c3');
SELECT presence.add('upgrade', 'c4', 'cat');
SELECT presence.leave_all('c1');
SELECT channel, user_id, meta FROM presence.members('upgrade');
-- and still nothing beyond the API
SELECT count(*) FROM presence.presences;
RESET ROLE;

CREATE TEMP TABLE after_update AS SELECT * FROM presence_objects;

-- A fresh install of the current version with the same GRANTs.
DROP EXTENSION presence;
CREATE EXTENSION presence;
SELECT pg_temp.apply_app_grants();
CREATE TEMP TABLE fresh AS SELECT * FROM presence_objects;

-- What differs between the updated extension and a fresh install: nothing.
(SELECT 'only after update' AS side, * FROM after_update
 EXCEPT SELECT 'only after update', * FROM fresh)
UNION ALL
(SELECT 'only in fresh install', * FROM fresh
 EXCEPT SELECT 'only in fresh install', * FROM after_update)
ORDER BY kind, object, side;

-- The comparison covered the extension: each kind of object, the API, the
-- triggers, the app role's privileges.
SELECT string_agg(DISTINCT kind, ' ' ORDER BY kind) AS kinds_compared FROM fresh;
SELECT count(*) FILTER (WHERE kind = 'function' AND object LIKE 'presence.add(%') AS add,
       count(*) FILTER (WHERE kind = 'function' AND object LIKE 'presence.touch(%') AS touch,
       count(*) FILTER (WHERE kind = 'trigger') > 0 AS triggers,
       count(*) FILTER (WHERE kind = 'function'
                        AND fact LIKE '%regress_presence_upgrade_app=X/%') >= 10 AS app_grants,
       count(*) FILTER (WHERE kind = 'member') >= 15 AS members
FROM fresh;

-- And it sees a difference where there is one: a function setting changed
-- after the fresh install shows on both sides.
ALTER FUNCTION presence.touch(text) SET work_mem = '1MB';
(SELECT 'only after update' AS side, kind, object FROM (
    SELECT * FROM after_update EXCEPT SELECT * FROM presence_objects) d)
UNION ALL
(SELECT 'only in fresh install', kind, object FROM (
    SELECT * FROM presence_objects EXCEPT SELECT * FROM after_update) d)
ORDER BY kind, object, side;
ALTER FUNCTION presence.touch(text) RESET work_mem;

-- Until the update, the library let 0.1 run without presence.event_key
-- (events unsigned).  At the current version the table is required: without
-- it every call is an error, never an unsigned event.
ALTER TABLE presence.event_key RENAME TO event_key_moved;
SELECT presence.add('upgrade', 'k1');
ALTER TABLE presence.event_key_moved RENAME TO event_key;
SELECT presence.add('upgrade', 'k1');

-- Leave the current version installed and empty for the next test.
DROP OWNED BY regress_presence_upgrade_app;
DROP ROLE regress_presence_upgrade_app;
DELETE FROM presence.rooms;
