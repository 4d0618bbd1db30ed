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
 * Relations are found by name in schema presence and their OIDs cached
 * until the catalogs change.
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
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/*
 * OIDs and attribute numbers, looked up by name on first use and forgotten
 * whenever any pg_class or pg_namespace entry changes (a DROP and CREATE
 * EXTENSION among others), so they are never stale.
 */
typedef struct PresenceCatalog
{
	bool		valid;
	Oid			presences;
	Oid			channel_idx;
	Oid			room_user_idx;
	AttrNumber	channel_att;
	AttrNumber	last_seen_att;
} PresenceCatalog;

static PresenceCatalog catalog;
static bool callback_registered = false;

/* ForgetCatalog is the syscache callback that drops the cached OIDs. */
static void
ForgetCatalog(Datum arg, int cacheid, uint32 hashvalue)
{
	catalog.valid = false;
}

/* RelidIn returns the OID of relation relname in schema nsp, or errors. */
static Oid
RelidIn(const char *relname, Oid nsp)
{
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "presence: relation presence.%s does not exist", relname);
	return relid;
}

/* AttNumOf returns the attribute number of column attname of relid. */
static AttrNumber
AttNumOf(Oid relid, const char *attname)
{
	AttrNumber	attno = get_attnum(relid, attname);

	if (attno == InvalidAttrNumber)
		elog(ERROR, "presence: column presence.presences.%s does not exist", attname);
	return attno;
}

/* Catalog returns the OIDs the scans need, looking them up if needed. */
static PresenceCatalog *
Catalog(void)
{
	Oid			nsp;

	if (catalog.valid)
		return &catalog;

	if (!callback_registered)
	{
		CacheRegisterSyscacheCallback(RELOID, ForgetCatalog, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, ForgetCatalog, (Datum) 0);
		callback_registered = true;
	}

	nsp = get_namespace_oid("presence", false);
	catalog.presences = RelidIn("presences", nsp);
	catalog.channel_idx = RelidIn("presences_channel_idx", nsp);
	catalog.room_user_idx = RelidIn("presences_room_user_idx", nsp);
	catalog.channel_att = AttNumOf(catalog.presences, "channel");
	catalog.last_seen_att = AttNumOf(catalog.presences, "last_seen");
	catalog.valid = true;
	return &catalog;
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
	PresenceCatalog *cat = Catalog();
	AttrNumber	last_seen = cat->last_seen_att;
	Relation	rel = table_open(cat->presences, AccessShareLock);
	Relation	index = index_open(cat->channel_idx, AccessShareLock);
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
	PresenceCatalog *cat = Catalog();
	AttrNumber	channel_att = cat->channel_att;
	Relation	rel = table_open(cat->presences, AccessShareLock);
	Relation	index = index_open(cat->room_user_idx, AccessShareLock);
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
