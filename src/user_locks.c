/*-------------------------------------------------------------------------
 *
 * user_locks.c
 *		The lock per (room, user) that makes user_joined and user_left exact
 *		when two tabs of one user join or leave in the same instant, and the
 *		policy for when it is taken.
 *
 * An event's flag asks "does this user have another presence in this
 * room?".  Two transactions changing presences of one user in one room each
 * take the (room, user) lock, held to commit, before they answer; the
 * second waits for the first and then sees its change.
 *
 * The policy:
 *  - The API calls (add, remove, leave_all) take the locks they need before
 *    they change any row, in room order, waiting if another transaction
 *    holds one.  Waiting while holding no row lock is what keeps autocommit
 *    calls out of deadlocks.
 *  - When the events of a statement are built, each lock is only tried,
 *    never waited for: it is already held for API calls, and for anything
 *    else (prune, an admin's DML, a cascade) waiting could stall behind an
 *    application's open transaction.  A room whose lock is busy gets a
 *    bulk_change event (re-read the room) instead of a flag that could be
 *    wrong.
 *  - A transaction holds at most USER_LOCKS_PER_XACT of these locks, so that
 *    one transaction joining thousands of rooms cannot fill the shared lock
 *    table (max_locks_per_transaction x max_connections entries, shared by
 *    every session).  Past that, its flagged events are bulk_change too.
 *
 * The locks are advisory locks with locktag_field4 = PRESENCE_USER_LOCK_FIELD4
 * (objsubid 20562 in pg_locks); pg_advisory_lock() uses 1 and 2, so they
 * never collide with an application's advisory locks.
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"

#define PRESENCE_USER_LOCK_FIELD4 0x5052

/* The most (room, user) locks one transaction holds. */
#define USER_LOCKS_PER_XACT 64

/* Locks taken in the current transaction, and which transaction that is. */
static int	locks_held = 0;
static LocalTransactionId locks_lxid = InvalidLocalTransactionId;

/*
 * PresenceUserLock takes the (room, user_id) lock for the rest of the
 * transaction, waiting for it if wait is set.  Returns false, taking
 * nothing, if it is busy (and !wait) or the transaction already holds
 * USER_LOCKS_PER_XACT of them.
 */
bool
PresenceUserLock(const char *room, const char *user_id, bool wait)
{
	LOCKTAG		tag;
	LockAcquireResult res;

	if (locks_lxid != PresenceMyLocalXid())
	{
		locks_lxid = PresenceMyLocalXid();
		locks_held = 0;
	}

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId,
						 hash_bytes((const unsigned char *) room, strlen(room)),
						 hash_bytes((const unsigned char *) user_id, strlen(user_id)),
						 PRESENCE_USER_LOCK_FIELD4);

	if (PresenceLockHeldByMe(&tag, ExclusiveLock))
		return true;

	if (locks_held >= USER_LOCKS_PER_XACT)
		return false;

	res = LockAcquire(&tag, ExclusiveLock, false, !wait);
	if (res == LOCKACQUIRE_NOT_AVAIL)
		return false;
	locks_held++;
	return true;
}
