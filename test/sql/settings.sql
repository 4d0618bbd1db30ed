--
-- settings: presence.max_age, presence.touch_interval, presence.notify and
-- presence.notify_channel (DESIGN.md section 5).
--
-- The settings are defined by the presence library, which a session loads on
-- its first call of a presence function (or with LOAD); it does not need
-- shared_preload_libraries.  (In worker mode it is preloaded, so it is known
-- from the start and bad values are refused at SET: expected/settings_1.out.)
-- Before that, PostgreSQL does not know them yet:
SHOW presence.max_age;

-- Values set before the library is loaded are kept as placeholders and
-- checked when it loads: a good value is kept, a bad value or an unknown
-- presence.* name is dropped with a WARNING.
SET presence.max_age = '90s';
SET presence.touch_interval = 'soon';
SET presence.unknown_thing = 1;
LOAD 'presence';
SHOW presence.max_age;
SHOW presence.touch_interval;
SHOW presence.unknown_thing;
RESET presence.max_age;

--
-- Defaults: max_age 60 s (the seed's), touch_interval 1 s, notify on, on the
-- channel "presence".  All four can be set by any user, per session.
--
SHOW presence.max_age;
SHOW presence.touch_interval;
SHOW presence.notify;
SHOW presence.notify_channel;
-- (presence.queue_size and presence.max_databases, the postmaster settings
-- of the worker transport, exist only when presence is preloaded.)
SELECT name, setting, unit, vartype, context, min_val, max_val, boot_val
FROM pg_settings WHERE name LIKE 'presence.%' AND context <> 'postmaster'
ORDER BY name;

--
-- Durations take PostgreSQL's units; a bare number is in the setting's unit
-- (seconds for max_age, milliseconds for touch_interval).
--
SET presence.max_age = '90s';
SHOW presence.max_age;
SET presence.max_age = '2min';
SHOW presence.max_age;
SET presence.max_age = '1h';
SHOW presence.max_age;
SET presence.max_age = 45;
SHOW presence.max_age;
SET presence.touch_interval = '500ms';
SHOW presence.touch_interval;
SET presence.touch_interval = '2s';
SHOW presence.touch_interval;
SET presence.touch_interval = 250;
SHOW presence.touch_interval;
SET presence.touch_interval = 0;
SHOW presence.touch_interval;
SET presence.notify = off;
SHOW presence.notify;
SET presence.notify_channel = 'app_events';
SHOW presence.notify_channel;

--
-- Bad values are errors, and the setting keeps its value.
--
-- max_age is at least one second (500ms rounds to 0 s) ...
SET presence.max_age = 0;
SET presence.max_age = '-5s';
SET presence.max_age = '500ms';
-- ... and a duration with a unit, not interval syntax.
SET presence.max_age = 'forever';
SET presence.max_age = '1 minute';
SHOW presence.max_age;
SET presence.touch_interval = -1;
SHOW presence.touch_interval;
SET presence.notify = 'maybe';
SHOW presence.notify;
-- notify_channel must be a channel name NOTIFY accepts: not empty, shorter
-- than 64 bytes.
SET presence.notify_channel = '';
SET presence.notify_channel = 'a_channel_name_of_sixty_four_bytes_is_one_byte_too_long_for_it_x';
SET presence.notify_channel = 'a_channel_name_of_sixty_three_bytes_is_just_short_enough_for_it';
SHOW presence.notify_channel;
-- "presence" is a reserved prefix: unknown names are rejected.
SET presence.unknown_thing = 1;
SET presence.maxage = '1min';

-- SET LOCAL lasts until the end of the transaction.
RESET presence.notify;
BEGIN;
SET LOCAL presence.notify = off;
SHOW presence.notify;
COMMIT;
SHOW presence.notify;

RESET presence.max_age;
RESET presence.touch_interval;
RESET presence.notify_channel;

--
-- ALTER ROLE ... SET and ALTER DATABASE ... SET: checked the same way, and
-- applied to the sessions that start afterwards.
--
CREATE ROLE regress_presence_settings LOGIN;
GRANT USAGE ON SCHEMA presence TO regress_presence_settings;
GRANT EXECUTE ON FUNCTION presence.touch(text) TO regress_presence_settings;
ALTER ROLE regress_presence_settings SET presence.max_age = '5min';
ALTER ROLE regress_presence_settings SET presence.notify_channel = 'app_events';
ALTER DATABASE :"DBNAME" SET presence.touch_interval = '250ms';
ALTER ROLE regress_presence_settings SET presence.max_age = 'forever';
ALTER DATABASE :"DBNAME" SET presence.unknown_thing = 1;
SELECT coalesce(r.rolname, '(every role)') AS role,
       CASE WHEN s.setdatabase = 0 THEN '(every database)'
            WHEN d.datname = current_database() THEN '(this database)'
       END AS database,
       c.setting
FROM pg_db_role_setting s
     LEFT JOIN pg_roles r ON r.oid = s.setrole
     LEFT JOIN pg_database d ON d.oid = s.setdatabase,
     unnest(s.setconfig) AS c(setting)
WHERE c.setting LIKE 'presence.%'
ORDER BY role, c.setting;

-- A new session of the same (superuser) role gets the database's setting.
SELECT current_user AS superuser \gset
\c -
LOAD 'presence';
SHOW presence.max_age;
SHOW presence.touch_interval;

-- A session of regress_presence_settings gets both its own settings and
-- the database's, once its first call has loaded the library.
\c - regress_presence_settings
SELECT presence.touch('nobody');
SHOW presence.max_age;
SHOW presence.touch_interval;
SHOW presence.notify_channel;
SHOW presence.notify;

-- Clean up: settings, grants and the role (roles are cluster-wide).
\c - :superuser
ALTER DATABASE :"DBNAME" RESET presence.touch_interval;
DROP OWNED BY regress_presence_settings;
DROP ROLE regress_presence_settings;
SELECT count(*) AS presence_settings_left
FROM pg_db_role_setting s, unnest(s.setconfig) AS c(setting)
WHERE c.setting LIKE 'presence.%';
