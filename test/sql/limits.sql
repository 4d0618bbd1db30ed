--
-- limits: the server is protected from its own callers.  A meta larger than
-- presence.max_meta_size is refused (54000); a transaction that joins
-- thousands of rooms does not fill the shared lock table.
--

-- max_meta_size: 64kB by default, superuser-only.
SELECT presence.add('lim_lobby', 'lim1', 'ann', jsonb_build_object('s', repeat('x', 70000)));
SHOW presence.max_meta_size;
SELECT presence.add('lim_lobby', 'lim1', 'ann', '{"status":"here"}');
SELECT presence.update('lim_lobby', 'lim1', jsonb_build_object('s', repeat('x', 70000)));
-- Nothing changed by the refused calls.
SELECT channel, meta->>'status' AS status, length(meta->>'s') AS s_length FROM presence.members('lim_lobby');
-- Just under the limit is fine.
SELECT presence.update('lim_lobby', 'lim1', jsonb_build_object('s', repeat('x', 60000)));
SELECT pg_column_size(meta) < 65536 AS stored FROM presence.presences WHERE channel = 'lim1';
-- A role without SET privilege cannot raise it for itself.
CREATE ROLE lim_app;
SET ROLE lim_app;
SET presence.max_meta_size = '1MB';
RESET ROLE;
DROP ROLE lim_app;
-- A superuser can.
SET presence.max_meta_size = '1MB';
SELECT presence.update('lim_lobby', 'lim1', jsonb_build_object('s', repeat('x', 70000)));
RESET presence.max_meta_size;
SELECT presence.leave_all('lim1');

--
-- One transaction joins one channel of one user to 20000 rooms, then leaves
-- them all.  The user_joined / user_left locks it holds to commit stay
-- few (the rest of its events are bulk_change: re-read), so the shared lock
-- table (max_locks_per_transaction x max_connections entries) is not
-- exhausted for this or any other session.
--
BEGIN;
SELECT count(*) FILTER (WHERE presence.add('lim_' || i, 'lim2', 'ann')) AS joined
FROM generate_series(1, 20000) i;
SELECT count(*) <= 64 AS few_locks FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 20562 AND pid = pg_backend_pid();
SELECT presence.leave_all('lim2') AS left_rooms;
COMMIT;
SELECT count(*) AS presences_left FROM presence.presences WHERE channel = 'lim2';

-- Leave the database empty for the next test.
DELETE FROM presence.rooms;
