--
-- security: the tables are the extension's own; roles use the API, and only
-- once granted (DESIGN.md section 9).
--
-- Roles are cluster-wide: they are dropped again at the end.
--
\pset null '(null)'

--
-- Nothing is granted to PUBLIC: not the schema, not the tables, not one
-- function (REVOKE ALL ... FROM PUBLIC in the install script).
--
SELECT 'schema presence' AS object, a.privilege_type
FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
WHERE n.nspname = 'presence' AND a.grantee = 0
UNION ALL
SELECT c.oid::regclass::text, a.privilege_type
FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
WHERE c.relnamespace = 'presence'::regnamespace AND a.grantee = 0
UNION ALL
SELECT p.oid::regprocedure::text, a.privilege_type
FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
WHERE p.pronamespace = 'presence'::regnamespace AND a.grantee = 0;

--
-- The functions run as the extension owner (SECURITY DEFINER), with their
-- search_path pinned: by a SET clause, or, for the five membership functions
-- (the hot path, where the SET clause would cost more than touch itself), in
-- C: every statement they run is prepared and executed with search_path set
-- to pg_catalog alone (src/plans.c).  The hijack test below runs through
-- them.  capture_change and send_events, the triggers, run as whoever
-- changes the table and look nothing up by name.
--
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer,
       p.proconfig AS config
FROM pg_proc p
WHERE p.pronamespace = 'presence'::regnamespace
ORDER BY p.proname;
-- No other SECURITY DEFINER function without a SET search_path:
SELECT p.oid::regprocedure AS unpinned_security_definer
FROM pg_proc p
WHERE p.pronamespace = 'presence'::regnamespace AND p.prosecdef
  AND NOT coalesce(p.proconfig, '{}') @> '{"search_path=pg_catalog, pg_temp"}'
  AND p.proname NOT IN ('add', 'remove', 'leave_all', 'touch', 'update');

CREATE ROLE regress_presence_nobody;
CREATE ROLE regress_presence_app;

--
-- A role without grants is denied everything: first by the schema ...
--
SET ROLE regress_presence_nobody;
SELECT presence.add('sec', 'c1');
SELECT * FROM presence.members('sec');
SELECT * FROM presence.presences;
RESET ROLE;

-- ... and with USAGE on the schema, by every function and table.
GRANT USAGE ON SCHEMA presence TO regress_presence_nobody;
SET ROLE regress_presence_nobody;
SELECT presence.add('sec', 'c1');
SELECT presence.remove('sec', 'c1');
SELECT presence.leave_all('c1');
SELECT presence.touch('c1');
SELECT presence.update('sec', 'c1', '{}');
SELECT * FROM presence.members('sec');
SELECT * FROM presence.users('sec');
SELECT presence.anonymous_count('sec');
SELECT * FROM presence.rooms_of('c1');
SELECT * FROM presence.stats('sec');
SELECT * FROM presence.presences;
SELECT * FROM presence.rooms;
RESET ROLE;

--
-- The app role gets exactly the README's grants.
--
GRANT USAGE ON SCHEMA presence TO regress_presence_app;
GRANT EXECUTE ON FUNCTION
    presence.add(text, text, text, jsonb),
    presence.remove(text, text),
    presence.leave_all(text),
    presence.touch(text),
    presence.update(text, text, jsonb),
    presence.members(text),
    presence.users(text),
    presence.anonymous_count(text),
    presence.rooms_of(text),
    presence.stats(text)
TO regress_presence_app;

-- It can use the whole API ...
SET ROLE regress_presence_app;
SELECT presence.add('sec', 'c1', 'ann'), presence.add('sec', 'c2');
SELECT presence.touch('c1'), presence.update('sec', 'c1', '{"status": "away"}');
SELECT channel, user_id, meta FROM presence.members('sec');
SELECT * FROM presence.users('sec');
SELECT presence.anonymous_count('sec');
SELECT * FROM presence.rooms_of('c1');
SELECT * FROM presence.stats('sec');
SELECT presence.remove('sec', 'c2'), presence.leave_all('c2');

-- ... but not the tables themselves.
SELECT * FROM presence.presences;
SELECT * FROM presence.rooms;
INSERT INTO presence.rooms (name) VALUES ('sneaky');
INSERT INTO presence.presences (room, channel) VALUES ('sec', 'sneaky');
UPDATE presence.presences SET user_id = 'bob';
UPDATE presence.presences SET last_seen = now() + interval '1 year';
DELETE FROM presence.presences;
DELETE FROM presence.rooms;
TRUNCATE presence.presences;
-- Nor can it silence or divert the events of its changes: presence.notify
-- and presence.notify_channel are superuser settings.
SET presence.notify = off;
SET presence.notify_channel = 'elsewhere';
RESET ROLE;
SELECT t.tab, p.priv,
       has_table_privilege('regress_presence_app', t.tab, p.priv) AS granted
FROM unnest(ARRAY['presence.rooms', 'presence.presences']) AS t(tab),
     unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                  'REFERENCES', 'TRIGGER']) AS p(priv)
WHERE has_table_privilege('regress_presence_app', t.tab, p.priv);

--
-- A search_path hijack changes nothing.  The app role puts a schema of its
-- own first in its search_path, with tables named presences and rooms, a
-- now() that returns the year 2000, and an = for text that is always true,
-- and lists pg_catalog after it, so that these win over the built-ins in its
-- session.  It also creates a temporary table rooms, as pg_temp is in the
-- functions' pinned search_path.  A new session, so that the API's
-- statements are prepared for the first time under the hijacked path.
--
GRANT CREATE ON DATABASE :"DBNAME" TO regress_presence_app;
\c -
\pset null '(null)'
SET ROLE regress_presence_app;
CREATE SCHEMA regress_evil;
CREATE TABLE regress_evil.presences (room text, channel text, user_id text,
    meta jsonb, joined_at timestamptz, last_seen timestamptz);
CREATE TABLE regress_evil.rooms (name text, created_at timestamptz);
CREATE TEMP TABLE rooms (name text, created_at timestamptz);
CREATE FUNCTION regress_evil.now() RETURNS timestamptz
    LANGUAGE sql AS $$ SELECT '2000-01-01 00:00:00+00'::timestamptz $$;
CREATE FUNCTION regress_evil.text_eq(text, text) RETURNS boolean
    LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR regress_evil.= (LEFTARG = text, RIGHTARG = text,
                                FUNCTION = regress_evil.text_eq);
SET search_path = regress_evil, pg_catalog;

-- The hijack works on the role's own SQL:
SELECT now() = '2000-01-01 00:00:00+00' AS fake_now,
       'a' = 'b' AS fake_equals,
       (SELECT count(*) FROM presences) AS fake_presences,
       (SELECT count(*) FROM rooms) AS fake_rooms;

-- but not on the API.  remove() of a channel that is not there removes
-- nothing (an always-true = would remove every presence of the room), and
-- last_seen comes from the real now().
SELECT presence.add('sec', 'c3', 'carl');
SELECT presence.remove('sec', 'nobody');
SELECT presence.leave_all('nobody');
SELECT presence.update('sec', 'nobody', '{}');
SELECT presence.touch('c3');
SELECT channel, user_id, meta, last_seen > '2001-01-01' AS real_now
FROM presence.members('sec');
SELECT * FROM presence.stats('sec');
SELECT * FROM presence.users('sec');
SELECT (SELECT count(*) FROM regress_evil.presences) AS fake_presences,
       (SELECT count(*) FROM regress_evil.rooms) AS fake_rooms,
       (SELECT count(*) FROM pg_temp.rooms) AS fake_temp_rooms;
RESET search_path;
RESET ROLE;

-- As the owner: the real table holds the presences, with real timestamps.
SELECT room, channel, user_id,
       joined_at > now() - interval '1 hour' AS real_joined_at,
       last_seen > now() - interval '1 hour' AS real_last_seen
FROM presence.presences ORDER BY room, channel;

-- Clean up: presences, the app's schema, grants, roles.
SELECT presence.leave_all('c1'), presence.leave_all('c3');
DELETE FROM presence.rooms;
DROP OWNED BY regress_presence_app, regress_presence_nobody CASCADE;
DROP ROLE regress_presence_app;
DROP ROLE regress_presence_nobody;
