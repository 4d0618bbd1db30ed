-- presence router: the presence.* API of the extension, routed by room to N
-- shard databases with PL/Proxy (Debian: postgresql-15-plproxy).
--
-- Run as a superuser in the router database, which must NOT have the
-- presence extension (the router holds no presence data):
--
--     psql -d presence_router -f clients/plproxy/router.sql
--     psql -d presence_router -c "CALL presence_router.set_shards(ARRAY[
--         'host=shard0.example dbname=app', 'host=shard1.example dbname=app'])"
--     psql -d presence_router -c "CREATE USER MAPPING FOR app SERVER presence_shards
--         OPTIONS (user 'app', password '...')"
--     psql -d presence_router -c "CALL presence_router.grant_app('app')"
--
-- Each shard database has CREATE EXTENSION presence (and pg_cron, for its
-- own pruning job); the kit installs nothing else there.  See README.md.
--
-- Routing: a room lives on shard  hashtext(room) & (N - 1)  (N a power of
-- two, PL/Proxy's default bit-mask mapping), so every call about one room
-- reaches exactly one shard, and that shard sends the room's events.  Calls
-- keyed by a channel fan out to every shard in parallel; the forms that
-- also take the connection's rooms reach only the shards of those rooms.
--
-- Every function here is SECURITY INVOKER: PL/Proxy looks up the user
-- mapping of the calling role, so each shard sees the application's own
-- role and enforces the extension's GRANTs.  Each call runs in its own
-- transaction on its shard(s) (PL/Proxy's autocommit): rolling back the
-- router's transaction does not undo it.

\set ON_ERROR_STOP on
BEGIN;

DO $check$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'presence') THEN
        RAISE EXCEPTION 'the presence extension is installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The router only routes calls; presence data lives in the shard databases.',
                  HINT = 'Run router.sql in a database of its own (for example presence_router).';
    END IF;
END
$check$;

CREATE EXTENSION IF NOT EXISTS plproxy;

CREATE SCHEMA IF NOT EXISTS presence;
COMMENT ON SCHEMA presence IS
    'presence API routed by room to the shards of server presence_shards (clients/plproxy)';
CREATE SCHEMA IF NOT EXISTS presence_router;
COMMENT ON SCHEMA presence_router IS
    'routing internals and administration of the presence router (clients/plproxy)';

--------------------------------------------------------------------------
-- Routing: which shard a room lives on
--------------------------------------------------------------------------

-- PL/Proxy maps the hash to a partition with  hash & (N - 1).  A NULL room
-- is routed like '' so that the shard itself refuses it with the
-- extension's own error (22004), instead of PL/Proxy's "hash function
-- returned NULL".
CREATE OR REPLACE FUNCTION presence_router.room_hash(room text)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.hashtext(COALESCE(room, ''));
COMMENT ON FUNCTION presence_router.room_hash(text) IS
    'Routing hash of a room (hashtext); PL/Proxy sends the call to partition hash & (N - 1)';

-- The same for calls that change presence: a shard cannot see that the
-- router's transaction is read-only (PL/Proxy runs the call in a
-- transaction of its own there), so the router refuses it, as the
-- extension does in a read-only transaction or on a hot standby.
CREATE OR REPLACE FUNCTION presence_router.room_hash_for_write(room text)
RETURNS integer
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF pg_catalog.current_setting('transaction_read_only') OPERATOR(pg_catalog.=) 'on' THEN
        RAISE EXCEPTION 'cannot change presence in a read-only transaction'
            USING ERRCODE = 'read_only_sql_transaction';
    END IF;
    RETURN pg_catalog.hashtext(COALESCE(room, ''));
END
$$;
COMMENT ON FUNCTION presence_router.room_hash_for_write(text) IS
    'room_hash for calls that change presence; ERROR 25006 in a read-only transaction';

-- check_writable raises 25006 in a read-only transaction (for the fan-out
-- calls, which have no routing hash to do it).
CREATE OR REPLACE FUNCTION presence_router.check_writable()
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF pg_catalog.current_setting('transaction_read_only') OPERATOR(pg_catalog.=) 'on' THEN
        RAISE EXCEPTION 'cannot change presence in a read-only transaction'
            USING ERRCODE = 'read_only_sql_transaction';
    END IF;
END
$$;
COMMENT ON FUNCTION presence_router.check_writable() IS
    'ERROR 25006 in a read-only transaction';

-- check_rooms validates the rooms argument of the room-scoped forms: the
-- rooms pick the shards, so a bad one is refused here, before any call.
CREATE OR REPLACE FUNCTION presence_router.check_rooms(rooms text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    bad text;
BEGIN
    IF rooms IS NULL THEN
        RAISE EXCEPTION 'rooms must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.cardinality(rooms) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'rooms must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the rooms the channel is in, or call the form without rooms, which asks every shard.';
    END IF;
    FOREACH bad IN ARRAY rooms LOOP
        IF bad IS NULL THEN
            RAISE EXCEPTION 'rooms must not contain null' USING ERRCODE = 'null_value_not_allowed';
        ELSIF bad OPERATOR(pg_catalog.=) '' THEN
            RAISE EXCEPTION 'rooms must not contain an empty room' USING ERRCODE = 'invalid_parameter_value';
        ELSIF pg_catalog.char_length(bad) OPERATOR(pg_catalog.>) 255 THEN
            RAISE EXCEPTION 'room is too long'
                USING ERRCODE = 'string_data_right_truncation',
                      DETAIL = pg_catalog.format('The room has %s characters; the limit is 255.',
                                                 pg_catalog.char_length(bad));
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION presence_router.check_rooms(text[]) IS
    'Refuses a NULL or empty rooms array, NULL, empty or over-long rooms in it';

--------------------------------------------------------------------------
-- Membership, one room: exactly one shard
--------------------------------------------------------------------------

-- presence.origin (the setting that tags a change's event with who made
-- it) is a setting of the router's session, which the shard does not see:
-- each call that changes presence passes its value along, and the shard
-- sets it for the call's transaction there (set_config(..., true)).  The
-- API functions are SQL wrappers (inlined) around these PL/Proxy halves.

CREATE OR REPLACE FUNCTION presence_router.add(room text, channel text, user_id text,
                                               meta jsonb, origin text)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON presence_router.room_hash_for_write(room);
    SELECT presence.add(room, channel, user_id, meta)
      FROM (SELECT pg_catalog.set_config('presence.origin', COALESCE(origin, ''), true)) o;
$$;
COMMENT ON FUNCTION presence_router.add(text, text, text, jsonb, text) IS
    'presence.add on the room''s shard, with presence.origin set there';

CREATE OR REPLACE FUNCTION presence_router.remove(room text, channel text, origin text)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON presence_router.room_hash_for_write(room);
    SELECT presence.remove(room, channel)
      FROM (SELECT pg_catalog.set_config('presence.origin', COALESCE(origin, ''), true)) o;
$$;
COMMENT ON FUNCTION presence_router.remove(text, text, text) IS
    'presence.remove on the room''s shard, with presence.origin set there';

CREATE OR REPLACE FUNCTION presence_router.update(room text, channel text, meta jsonb, origin text)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON presence_router.room_hash_for_write(room);
    SELECT presence.update(room, channel, meta)
      FROM (SELECT pg_catalog.set_config('presence.origin', COALESCE(origin, ''), true)) o;
$$;
COMMENT ON FUNCTION presence_router.update(text, text, jsonb, text) IS
    'presence.update on the room''s shard, with presence.origin set there';

CREATE OR REPLACE FUNCTION presence.add(room text, channel text,
                                        user_id text DEFAULT NULL, meta jsonb DEFAULT NULL)
RETURNS boolean
LANGUAGE sql
RETURN presence_router.add(room, channel, user_id, meta,
                           pg_catalog.current_setting('presence.origin', true));
COMMENT ON FUNCTION presence.add(text, text, text, jsonb) IS
    'Join room with channel, on the room''s shard (see the extension''s presence.add)';

CREATE OR REPLACE FUNCTION presence.remove(room text, channel text)
RETURNS boolean
LANGUAGE sql
RETURN presence_router.remove(room, channel, pg_catalog.current_setting('presence.origin', true));
COMMENT ON FUNCTION presence.remove(text, text) IS
    'Leave one room, on the room''s shard; true if a presence was removed';

CREATE OR REPLACE FUNCTION presence.update(room text, channel text, meta jsonb)
RETURNS boolean
LANGUAGE sql
RETURN presence_router.update(room, channel, meta, pg_catalog.current_setting('presence.origin', true));
COMMENT ON FUNCTION presence.update(text, text, jsonb) IS
    'Replace meta of one presence, on the room''s shard; true if the presence exists';

--------------------------------------------------------------------------
-- Reading one room: exactly one shard
--------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION presence.members(room text)
RETURNS TABLE (channel text, user_id text, meta jsonb,
               joined_at timestamptz, last_seen timestamptz)
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON presence_router.room_hash(room);
$$;
COMMENT ON FUNCTION presence.members(text) IS
    'Presences of room, ordered by channel, from the room''s shard';

CREATE OR REPLACE FUNCTION presence.users(room text)
RETURNS SETOF text
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON presence_router.room_hash(room);
$$;
COMMENT ON FUNCTION presence.users(text) IS
    'Distinct non-NULL user_ids present in room, ordered, from the room''s shard';

CREATE OR REPLACE FUNCTION presence.anonymous_count(room text)
RETURNS bigint
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON presence_router.room_hash(room);
$$;
COMMENT ON FUNCTION presence.anonymous_count(text) IS
    'Number of presences in room with a NULL user_id, from the room''s shard';

CREATE OR REPLACE FUNCTION presence.stats(room text)
RETURNS TABLE (connections bigint, users bigint, anonymous bigint)
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON presence_router.room_hash(room);
$$;
COMMENT ON FUNCTION presence.stats(text) IS
    'Connections, distinct users and anonymous connections of room, from the room''s shard';

--------------------------------------------------------------------------
-- Keyed by channel: every shard, or the shards of the given rooms
--------------------------------------------------------------------------

-- The per-shard halves.  RUN ON ALL sends the call to every shard at once
-- (in parallel) and returns one row per shard; the SPLIT forms send it only
-- to the shards that hold at least one of the rooms, each shard once.
CREATE OR REPLACE FUNCTION presence_router.touch_all(channel text)
RETURNS SETOF integer
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON ALL;
    TARGET presence.touch;
$$;
COMMENT ON FUNCTION presence_router.touch_all(text) IS
    'presence.touch(channel) on every shard; one count per shard';

CREATE OR REPLACE FUNCTION presence_router.touch_rooms(channel text, rooms text[])
RETURNS SETOF integer
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    SPLIT rooms;
    RUN ON presence_router.room_hash_for_write(rooms);
    SELECT presence.touch(channel);
$$;
COMMENT ON FUNCTION presence_router.touch_rooms(text, text[]) IS
    'presence.touch(channel) on each shard that holds one of rooms, once; one count per shard';

CREATE OR REPLACE FUNCTION presence_router.leave_all_all(channel text, origin text)
RETURNS SETOF integer
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON ALL;
    SELECT presence.leave_all(channel)
      FROM (SELECT pg_catalog.set_config('presence.origin', COALESCE(origin, ''), true)) o;
$$;
COMMENT ON FUNCTION presence_router.leave_all_all(text, text) IS
    'presence.leave_all(channel) on every shard, with presence.origin set there; one count per shard';

CREATE OR REPLACE FUNCTION presence_router.leave_all_rooms(channel text, rooms text[], origin text)
RETURNS SETOF integer
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    SPLIT rooms;
    RUN ON presence_router.room_hash_for_write(rooms);
    SELECT presence.leave_all(channel)
      FROM (SELECT pg_catalog.set_config('presence.origin', COALESCE(origin, ''), true)) o;
$$;
COMMENT ON FUNCTION presence_router.leave_all_rooms(text, text[], text) IS
    'presence.leave_all(channel) on each shard that holds one of rooms, once; one count per shard';

CREATE OR REPLACE FUNCTION presence_router.rooms_of_all(channel text)
RETURNS SETOF text
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON ALL;
    TARGET presence.rooms_of;
$$;
COMMENT ON FUNCTION presence_router.rooms_of_all(text) IS
    'presence.rooms_of(channel) on every shard, unordered';

-- The API.  touch and leave_all add up the shards' counts: a channel's
-- presences are spread over the shards of its rooms.

CREATE OR REPLACE FUNCTION presence.touch(channel text)
RETURNS integer
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM presence_router.check_writable();
    RETURN (SELECT COALESCE(pg_catalog.sum(n), 0)::integer FROM presence_router.touch_all(channel) n);
END
$$;
COMMENT ON FUNCTION presence.touch(text) IS
    'Refresh last_seen of every presence of channel on every shard (one call per shard); number of presences, 0 meaning re-join';

CREATE OR REPLACE FUNCTION presence.touch(channel text, rooms text[])
RETURNS integer
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM presence_router.check_rooms(rooms);
    RETURN (SELECT COALESCE(pg_catalog.sum(n), 0)::integer FROM presence_router.touch_rooms(channel, rooms) n);
END
$$;
COMMENT ON FUNCTION presence.touch(text, text[]) IS
    'presence.touch(channel) on the shards of rooms only (the rooms the channel is in): one call for rooms on one shard; number of presences the channel has there';

CREATE OR REPLACE FUNCTION presence.leave_all(channel text)
RETURNS integer
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM presence_router.check_writable();
    RETURN (SELECT COALESCE(pg_catalog.sum(n), 0)::integer FROM presence_router.leave_all_all(
        channel, pg_catalog.current_setting('presence.origin', true)) n);
END
$$;
COMMENT ON FUNCTION presence.leave_all(text) IS
    'Leave every room on every shard (disconnect); number of presences removed';

CREATE OR REPLACE FUNCTION presence.leave_all(channel text, rooms text[])
RETURNS integer
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM presence_router.check_rooms(rooms);
    RETURN (SELECT COALESCE(pg_catalog.sum(n), 0)::integer FROM presence_router.leave_all_rooms(
        channel, rooms, pg_catalog.current_setting('presence.origin', true)) n);
END
$$;
COMMENT ON FUNCTION presence.leave_all(text, text[]) IS
    'presence.leave_all(channel) on the shards of rooms only; number of presences removed there';

CREATE OR REPLACE FUNCTION presence.rooms_of(channel text)
RETURNS SETOF text
LANGUAGE sql
AS $$
    SELECT r FROM presence_router.rooms_of_all(channel) r ORDER BY 1
$$;
COMMENT ON FUNCTION presence.rooms_of(text) IS
    'Rooms channel is in, on every shard, ordered';

--------------------------------------------------------------------------
-- Pruning: each shard prunes itself (its own pg_cron job); these fan out
--------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION presence_router.prune_all(max_age interval, origin text)
RETURNS SETOF integer
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON ALL;
    SELECT presence.prune(max_age)
      FROM (SELECT pg_catalog.set_config('presence.origin', COALESCE(origin, ''), true)) o;
$$;
COMMENT ON FUNCTION presence_router.prune_all(interval, text) IS
    'presence.prune(max_age) on every shard; one count per shard';

CREATE OR REPLACE FUNCTION presence_router.prune_rooms_all()
RETURNS SETOF integer
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON ALL;
    TARGET presence.prune_rooms;
$$;
COMMENT ON FUNCTION presence_router.prune_rooms_all() IS
    'presence.prune_rooms() on every shard; one count per shard';

CREATE OR REPLACE FUNCTION presence_router.schedule_prune_all(schedule text)
RETURNS SETOF bigint
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON ALL;
    TARGET presence.schedule_prune;
$$;
COMMENT ON FUNCTION presence_router.schedule_prune_all(text) IS
    'presence.schedule_prune(schedule) on every shard; one job id per shard';

CREATE OR REPLACE FUNCTION presence_router.unschedule_prune_all()
RETURNS SETOF boolean
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON ALL;
    TARGET presence.unschedule_prune;
$$;
COMMENT ON FUNCTION presence_router.unschedule_prune_all() IS
    'presence.unschedule_prune() on every shard; one result per shard';

CREATE OR REPLACE FUNCTION presence.prune(max_age interval DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM presence_router.check_writable();
    RETURN (SELECT COALESCE(pg_catalog.sum(n), 0)::integer FROM presence_router.prune_all(
        max_age, pg_catalog.current_setting('presence.origin', true)) n);
END
$$;
COMMENT ON FUNCTION presence.prune(interval) IS
    'presence.prune(max_age) on every shard (NULL: each shard''s presence.max_age); number deleted';

CREATE OR REPLACE FUNCTION presence.prune_rooms()
RETURNS integer
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM presence_router.check_writable();
    RETURN (SELECT COALESCE(pg_catalog.sum(n), 0)::integer FROM presence_router.prune_rooms_all() n);
END
$$;
COMMENT ON FUNCTION presence.prune_rooms() IS
    'presence.prune_rooms() on every shard; number of rooms deleted';

-- Each shard gets its own pg_cron job (it must have pg_cron in the shard
-- database): the router returns how many shards have one, not a job id.
CREATE OR REPLACE FUNCTION presence.schedule_prune(schedule text DEFAULT '* * * * *')
RETURNS bigint
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM presence_router.check_writable();
    RETURN (SELECT pg_catalog.count(j) FROM presence_router.schedule_prune_all(schedule) j);
END
$$;
COMMENT ON FUNCTION presence.schedule_prune(text) IS
    'Create or replace the pg_cron job presence-prune on every shard; number of shards scheduled (not a job id)';

CREATE OR REPLACE FUNCTION presence.unschedule_prune()
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM presence_router.check_writable();
    RETURN (SELECT COALESCE(pg_catalog.bool_or(r), false) FROM presence_router.unschedule_prune_all() r);
END
$$;
COMMENT ON FUNCTION presence.unschedule_prune() IS
    'Remove the pg_cron job presence-prune from every shard; false if no shard had one';

--------------------------------------------------------------------------
-- Administration: the shards, where a room lives, placement check, GRANTs
--------------------------------------------------------------------------

-- set_shards(connstrs) creates the PL/Proxy cluster (SQL/MED server
-- presence_shards) or replaces its partition list.  Partition i is
-- connstrs[i + 1].  Changing the list of a cluster with data moves rooms to
-- other shards: see README.md, "Adding shards".
CREATE OR REPLACE PROCEDURE presence_router.set_shards(connstrs text[])
LANGUAGE plpgsql
AS $$
DECLARE
    n integer := COALESCE(pg_catalog.cardinality(connstrs), 0);
    opts text[] := '{}';
    old text[];
    i integer;
BEGIN
    IF n OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'connstrs must list at least one shard' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF n OPERATOR(pg_catalog.&) (n OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog.<>) 0 THEN
        RAISE EXCEPTION 'the number of shards must be a power of two, not %', n
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'PL/Proxy maps rooms with hash & (N - 1); put two partitions'' databases on one server to fill up to a power of two.';
    END IF;
    IF pg_catalog.array_position(connstrs, NULL) IS NOT NULL
       OR EXISTS (SELECT 1 FROM pg_catalog.unnest(connstrs) c WHERE c OPERATOR(pg_catalog.=) '') THEN
        RAISE EXCEPTION 'connstrs must not contain null or empty strings' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF (SELECT pg_catalog.count(DISTINCT c) FROM pg_catalog.unnest(connstrs) c) OPERATOR(pg_catalog.<>) n THEN
        RAISE EXCEPTION 'connstrs must name a different database for every shard'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'PL/Proxy runs a call once per connection string: two shards with one would be asked once.';
    END IF;

    SELECT s.srvoptions INTO old FROM pg_catalog.pg_foreign_server s
     WHERE s.srvname OPERATOR(pg_catalog.=) 'presence_shards';
    IF NOT FOUND THEN
        FOR i IN 0 .. n OPERATOR(pg_catalog.-) 1 LOOP
            opts := opts OPERATOR(pg_catalog.||) pg_catalog.format('p%s %L', i, connstrs[i OPERATOR(pg_catalog.+) 1]);
        END LOOP;
        EXECUTE pg_catalog.format('CREATE SERVER presence_shards FOREIGN DATA WRAPPER plproxy OPTIONS (%s)',
                                  pg_catalog.array_to_string(opts, ', '));
        RETURN;
    END IF;
    -- Replace the partitions, keep the other options (connection_lifetime...).
    FOR i IN 0 .. n OPERATOR(pg_catalog.-) 1 LOOP
        opts := opts OPERATOR(pg_catalog.||) pg_catalog.format('%s p%s %L',
            CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.unnest(old) o
                               WHERE o OPERATOR(pg_catalog.~~) pg_catalog.format('p%s=%%', i)) THEN 'SET' ELSE 'ADD' END,
            i, connstrs[i OPERATOR(pg_catalog.+) 1]);
    END LOOP;
    opts := opts OPERATOR(pg_catalog.||) ARRAY(
        SELECT pg_catalog.format('DROP %s', pg_catalog.split_part(o, '=', 1))
          FROM pg_catalog.unnest(old) o
         WHERE o OPERATOR(pg_catalog.~) '^p[0-9]+='
           AND pg_catalog.substr(pg_catalog.split_part(o, '=', 1), 2)::integer OPERATOR(pg_catalog.>=) n);
    EXECUTE pg_catalog.format('ALTER SERVER presence_shards OPTIONS (%s)',
                              pg_catalog.array_to_string(opts, ', '));
END
$$;
COMMENT ON PROCEDURE presence_router.set_shards(text[]) IS
    'Create or replace the shard list of server presence_shards (partition i = connstrs[i + 1])';

-- shards() lists the shards in partition order: the connection strings that
-- LISTENers use (one connection per shard; add the credentials).
CREATE OR REPLACE FUNCTION presence_router.shards()
RETURNS TABLE (shard integer, connstr text)
LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.substr(pg_catalog.split_part(o, '=', 1), 2)::integer,
           pg_catalog.substr(o, pg_catalog.strpos(o, '=') OPERATOR(pg_catalog.+) 1)
      FROM pg_catalog.pg_foreign_server s, pg_catalog.unnest(s.srvoptions) o
     WHERE s.srvname OPERATOR(pg_catalog.=) 'presence_shards' AND o OPERATOR(pg_catalog.~) '^p[0-9]+='
     ORDER BY 1
$$;
COMMENT ON FUNCTION presence_router.shards() IS
    'The shards (partition number, connection string), in partition order';

-- shard_of(room) is the shard a room lives on.
CREATE OR REPLACE FUNCTION presence_router.shard_of(room text)
RETURNS integer
LANGUAGE sql STABLE
AS $$
    SELECT presence_router.room_hash(room) OPERATOR(pg_catalog.&)
           ((SELECT pg_catalog.count(*)::integer FROM presence_router.shards()) OPERATOR(pg_catalog.-) 1)
$$;
COMMENT ON FUNCTION presence_router.shard_of(text) IS
    'The shard (partition number) room lives on';

-- rooms_on(shard) lists the rooms of one shard: RUN ON takes the argument
-- as the hash, and hash & (N - 1) is the shard itself.
CREATE OR REPLACE FUNCTION presence_router.rooms_on(shard integer)
RETURNS SETOF text
LANGUAGE plproxy
AS $$
    CLUSTER 'presence_shards';
    RUN ON shard;
    SELECT r.name FROM presence.rooms r;
$$;
COMMENT ON FUNCTION presence_router.rooms_on(integer) IS
    'Rooms stored on one shard (needs read access to presence.rooms there)';

-- misplaced() lists rooms stored on a shard other than the one the router
-- sends them to: after a change of the shard list, or with the list in the
-- wrong order.  Empty when all is well.
CREATE OR REPLACE FUNCTION presence_router.misplaced()
RETURNS TABLE (room text, stored_on integer, routed_to integer)
LANGUAGE sql STABLE
AS $$
    SELECT r, s.shard, presence_router.shard_of(r)
      FROM presence_router.shards() s, presence_router.rooms_on(s.shard) r
     WHERE presence_router.shard_of(r) OPERATOR(pg_catalog.<>) s.shard
     ORDER BY 2, 1
$$;
COMMENT ON FUNCTION presence_router.misplaced() IS
    'Rooms stored on another shard than the one they are routed to (empty when all is well)';

-- grant_app(role) grants what an application role needs to call the API
-- through the router.  The role also needs a user mapping for server
-- presence_shards (its credentials on the shards), and on every shard the
-- extension's GRANTs (see the extension's README).
CREATE OR REPLACE PROCEDURE presence_router.grant_app(app name)
LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA presence, presence_router TO %I', app);
    EXECUTE pg_catalog.format('GRANT USAGE ON FOREIGN SERVER presence_shards TO %I', app);
    EXECUTE pg_catalog.format($g$GRANT EXECUTE ON FUNCTION
        presence.add(text, text, text, jsonb), presence.remove(text, text),
        presence.update(text, text, jsonb),
        presence.touch(text), presence.touch(text, text[]),
        presence.leave_all(text), presence.leave_all(text, text[]),
        presence.members(text), presence.users(text), presence.anonymous_count(text),
        presence.rooms_of(text), presence.stats(text),
        presence_router.room_hash(text), presence_router.room_hash_for_write(text),
        presence_router.check_writable(), presence_router.check_rooms(text[]),
        presence_router.add(text, text, text, jsonb, text), presence_router.remove(text, text, text),
        presence_router.update(text, text, jsonb, text),
        presence_router.touch_all(text), presence_router.touch_rooms(text, text[]),
        presence_router.leave_all_all(text, text), presence_router.leave_all_rooms(text, text[], text),
        presence_router.rooms_of_all(text)
        TO %I$g$, app);
END
$$;
COMMENT ON PROCEDURE presence_router.grant_app(name) IS
    'GRANTs an application role needs in the router (it also needs a user mapping for presence_shards)';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA presence FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA presence_router FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA presence_router FROM PUBLIC;

COMMIT;
