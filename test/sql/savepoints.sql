--
-- savepoints: changes inside a subtransaction that rolls back are forgotten
-- with their events, those outside stay; in worker mode (this suite also
-- runs with presence preloaded) the events wait in the transaction's outbox,
-- which must survive the rollback of a savepoint.  Events themselves are
-- checked in test/specs/events_replay.spec; here, that nothing breaks and
-- the table is right.
--
BEGIN;
SELECT presence.add('sp_lobby', 'sp1', 'ann');
SAVEPOINT a;
SELECT presence.add('sp_lobby', 'sp2', 'bob');
ROLLBACK TO a;
SELECT presence.add('sp_lobby', 'sp3', 'cid');
SAVEPOINT b;
SELECT presence.add('sp_lobby', 'sp4', 'dan');
SAVEPOINT c;
SELECT presence.remove('sp_lobby', 'sp1');
ROLLBACK TO c;
RELEASE b;
SAVEPOINT d;
SELECT presence.add('sp_lobby', 'sp5', 'eve');
ROLLBACK TO d;
COMMIT;
SELECT channel, user_id FROM presence.members('sp_lobby');

-- Savepoints rolled back with nothing in them, and after an error.
BEGIN;
SELECT presence.add('sp_hall', 'h1');
SAVEPOINT s; ROLLBACK TO s;
SELECT presence.add('sp_hall', 'h2');
SAVEPOINT s2; SELECT presence.add('sp_hall', 'h3'); ROLLBACK TO s2;
SAVEPOINT s3; SELECT 1/0; ROLLBACK TO s3;
SELECT presence.add('sp_hall', 'h4');
SAVEPOINT s4; SELECT 1/0; ROLLBACK TO s4;
COMMIT;
SELECT presence.flush_events();
SELECT channel FROM presence.members('sp_hall');

-- An error inside a PL/pgSQL exception block rolls back its subtransaction.
DO $$
BEGIN
    PERFORM presence.add('sp_lobby', 'sp6', 'fay');
    BEGIN
        PERFORM presence.add('sp_lobby', 'sp7', 'gus');
        PERFORM presence.add('sp_lobby', '', 'bad');
    EXCEPTION WHEN invalid_parameter_value THEN
        PERFORM presence.add('sp_lobby', 'sp8', 'hal');
    END;
END $$;
SELECT channel, user_id FROM presence.members('sp_lobby');

-- Leave the database empty for the next test.
DELETE FROM presence.rooms;
