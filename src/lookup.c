/*-------------------------------------------------------------------------
 *
 * lookup.c
 *		Direct index scans for the two reads on hot paths, where the SPI
 *		executor's per-statement setup would cost more than the read itself:
 *		touch()'s look at a channel's presences, and the user_joined /
 *		user_left check an event makes.
 *
 * Both only read, through an index whose leading columns are the keys, so
 * there is no plan to choose; writes always go through SPI (plans.c), so
 * that constraints, triggers and cascades run as for any other statement.
 * Relations are found by name in schema presence on each call (syscache
 * hits), so a DROP and CREATE EXTENSION needs nothing special.
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* PresenceRelid returns the OID of relation relname in schema presence. */
static Oid
PresenceRelid(const char *relname)
{
	Oid			relid = get_relname_relid(relname,
										  get_namespace_oid("presence", false));

	if (!OidIsValid(relid))
		elog(ERROR, "presence: relation presence.%s does not exist", relname);
	return relid;
}

/* AttNum returns the attribute number of column attname of rel. */
static AttrNumber
AttNum(Relation rel, const char *attname)
{
	AttrNumber	attno = get_attnum(RelationGetRelid(rel), attname);

	if (attno == InvalidAttrNumber)
		elog(ERROR, "presence: column presence.presences.%s does not exist", attname);
	return attno;
}

/* InitTextKey sets up key to match index column attno against value. */
static void
InitTextKey(ScanKey key, Relation index, AttrNumber attno, Datum value)
{
	ScanKeyEntryInitialize(key, 0, attno, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[attno - 1], F_TEXTEQ, value);
}

/*
 * PresenceTouchRead counts the presences of channel visible to the current
 * snapshot, and how many of them have last_seen before cutoff.
 */
void
PresenceTouchRead(text *channel, TimestampTz cutoff, int *count, int *stale)
{
	Relation	rel = table_open(PresenceRelid("presences"), AccessShareLock);
	Relation	index = index_open(PresenceRelid("presences_channel_idx"), AccessShareLock);
	AttrNumber	last_seen = AttNum(rel, "last_seen");
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan;
	ScanKeyData key;

	*count = *stale = 0;
	InitTextKey(&key, index, 1, PointerGetDatum(channel));
	scan = index_beginscan(rel, index, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, last_seen, &isnull);

		(*count)++;
		if (!isnull && DatumGetTimestampTz(d) < cutoff)
			(*stale)++;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	/* Locks are kept to the end of the transaction, as for any read. */
	index_close(index, NoLock);
	table_close(rel, NoLock);
}

/*
 * PresenceUserElsewhere tells whether user_id has a presence in room on a
 * channel other than channel, as of a snapshot taken now: newer than the
 * caller's (it is called after taking a lock that orders it with concurrent
 * writers) and seeing this transaction's changes so far.
 */
bool
PresenceUserElsewhere(const char *room, const char *user_id, const char *channel)
{
	Relation	rel = table_open(PresenceRelid("presences"), AccessShareLock);
	Relation	index = index_open(PresenceRelid("presences_room_user_idx"), AccessShareLock);
	AttrNumber	channel_att = AttNum(rel, "channel");
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan;
	ScanKeyData keys[2];
	Snapshot	snapshot;
	bool		found = false;

	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetLatestSnapshot());

	InitTextKey(&keys[0], index, 1, CStringGetTextDatum(room));
	InitTextKey(&keys[1], index, 2, CStringGetTextDatum(user_id));
	scan = index_beginscan(rel, index, snapshot, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	while (!found && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, channel_att, &isnull);
		char	   *other = TextDatumGetCString(d);

		found = strcmp(other, channel) != 0;
		pfree(other);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(index, NoLock);
	table_close(rel, NoLock);
	return found;
}
