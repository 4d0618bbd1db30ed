/*-------------------------------------------------------------------------
 *
 * lookup.c
 *		Direct index scans for the reads on hot paths, where the SPI
 *		executor's per-statement setup would cost more than the read itself:
 *		touch()'s look at a channel's presences, the presences remove() and
 *		leave_all() are about to delete (to lock their users first), and the
 *		user_joined / user_left check an event makes.
 *
 * All of them only read, through an index whose leading columns are the
 * keys (schema.c checks the definitions), so there is no plan to choose;
 * writes always go through SPI (plans.c), so that constraints, triggers and
 * cascades run as for any other statement.
 *
 * Every scan uses a snapshot taken now (after a CommandCounterIncrement):
 * it sees what this statement and transaction did so far and what other
 * transactions committed, which is what "how many presences does this
 * channel have" must answer (a read with the statement's snapshot would
 * say 0 for a channel joined earlier in the same statement).
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* An index scan of presence.presences in progress. */
typedef struct PresenceScan
{
	Relation	rel;
	Relation	index;
	TupleTableSlot *slot;
	IndexScanDesc scan;
	Snapshot	snapshot;
	ScanKeyData keys[2];
} PresenceScan;

/*
 * BeginScan starts a scan of index indexid of presence.presences for rows
 * whose first nkeys index columns equal values, with a snapshot taken now;
 * or, when now_enough is set, with the statement's own snapshot if this
 * transaction changed nothing since it was taken (then the two see the
 * same own changes, and a new one would only cost a ProcArray scan and a
 * copy on touch()'s hot path).
 */
static void
BeginScan(PresenceScan *ps, Oid indexid, int nkeys, Datum *values,
		  bool now_enough)
{
	PresenceSchemaInfo *schema = PresenceSchema();

	ps->rel = table_open(schema->presences, AccessShareLock);
	ps->index = index_open(indexid, AccessShareLock);
	ps->slot = table_slot_create(ps->rel, NULL);
	for (int k = 0; k < nkeys; k++)
		ScanKeyEntryInitialize(&ps->keys[k], 0, k + 1, BTEqualStrategyNumber,
							   InvalidOid, ps->index->rd_indcollation[k],
							   F_TEXTEQ, values[k]);
	if (now_enough && ActiveSnapshotSet() &&
		GetActiveSnapshot()->curcid == GetCurrentCommandId(false))
		ps->snapshot = RegisterSnapshot(GetActiveSnapshot());
	else
	{
		CommandCounterIncrement();
		ps->snapshot = RegisterSnapshot(GetLatestSnapshot());
	}
	ps->scan = index_beginscan(ps->rel, ps->index, ps->snapshot, nkeys, 0);
	index_rescan(ps->scan, ps->keys, nkeys, NULL, 0);
}

/* NextRow advances the scan; false at the end. */
static bool
NextRow(PresenceScan *ps)
{
	return index_getnext_slot(ps->scan, ForwardScanDirection, ps->slot);
}

/* TextColumn returns column attno of the current row as a C string, or NULL. */
static char *
TextColumn(PresenceScan *ps, AttrNumber attno)
{
	bool		isnull;
	Datum		d = slot_getattr(ps->slot, attno, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* EndScan ends the scan; locks are kept to the end of the transaction. */
static void
EndScan(PresenceScan *ps)
{
	index_endscan(ps->scan);
	UnregisterSnapshot(ps->snapshot);
	ExecDropSingleTupleTableSlot(ps->slot);
	index_close(ps->index, NoLock);
	table_close(ps->rel, NoLock);
}

/*
 * PresenceTouchRead returns how many presences channel has, and sets stale
 * to how many of them have last_seen before cutoff.  now_enough: the
 * statement's snapshot will do if it sees all this transaction did.
 */
int
PresenceTouchRead(text *channel, TimestampTz cutoff, int *stale, bool now_enough)
{
	PresenceScan ps;
	Datum		key = PointerGetDatum(channel);
	AttrNumber	last_seen = PresenceSchema()->last_seen_att;
	int			count = 0;

	*stale = 0;
	BeginScan(&ps, PresenceSchema()->channel_idx, 1, &key, now_enough);
	while (NextRow(&ps))
	{
		bool		isnull;
		Datum		d = slot_getattr(ps.slot, last_seen, &isnull);

		count++;
		if (!isnull && DatumGetTimestampTz(d) < cutoff)
			(*stale)++;
	}
	EndScan(&ps);
	return count;
}

/* PresenceChannelCount returns how many presences channel has now. */
int
PresenceChannelCount(text *channel)
{
	int			stale;

	return PresenceTouchRead(channel, DT_NOBEGIN, &stale, false);
}

/*
 * PresenceChannelMemberships returns the rooms channel is in, with the
 * user_id of each presence, in room order (the index order).  It tells
 * leave_all() which (room, user) locks to take first; what the delete then
 * finds is decided by the delete, so the statement's snapshot will do.
 */
List *
PresenceChannelMemberships(text *channel)
{
	PresenceScan ps;
	Datum		key = PointerGetDatum(channel);
	PresenceSchemaInfo *schema = PresenceSchema();
	List	   *result = NIL;

	BeginScan(&ps, schema->channel_idx, 1, &key, true);
	while (NextRow(&ps))
	{
		PresenceMembership *m = palloc(sizeof(PresenceMembership));

		m->room = TextColumn(&ps, schema->room_att);
		m->user_id = TextColumn(&ps, schema->user_id_att);
		result = lappend(result, m);
	}
	EndScan(&ps);
	return result;
}

/*
 * PresenceOwner tells whether channel is in room and sets user_id to the
 * presence's user_id (NULL: anonymous), for remove() to lock that user
 * first; as for PresenceChannelMemberships, the statement's snapshot will do.
 */
bool
PresenceOwner(text *room, text *channel, char **user_id)
{
	PresenceScan ps;
	Datum		keys[2] = {PointerGetDatum(channel), PointerGetDatum(room)};
	bool		found;

	*user_id = NULL;
	BeginScan(&ps, PresenceSchema()->channel_idx, 2, keys, true);
	found = NextRow(&ps);
	if (found)
		*user_id = TextColumn(&ps, PresenceSchema()->user_id_att);
	EndScan(&ps);
	return found;
}

/*
 * PresenceUserElsewhere tells whether user_id has a presence in room on a
 * channel other than channel.  Called after taking the (room, user) lock
 * that orders it with concurrent writers (user_locks.c), so its snapshot
 * sees their committed changes.
 */
bool
PresenceUserElsewhere(const char *room, const char *user_id, const char *channel)
{
	PresenceScan ps;
	Datum		keys[2] = {CStringGetTextDatum(room), CStringGetTextDatum(user_id)};
	AttrNumber	channel_att = PresenceSchema()->channel_att;
	bool		found = false;

	BeginScan(&ps, PresenceSchema()->room_user_idx, 2, keys, false);
	while (!found && NextRow(&ps))
	{
		char	   *other = TextColumn(&ps, channel_att);

		found = strcmp(other, channel) != 0;
		pfree(other);
	}
	EndScan(&ps);
	return found;
}
