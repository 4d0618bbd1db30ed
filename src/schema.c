/*-------------------------------------------------------------------------
 *
 * schema.c
 *		The facts about the extension's tables and indexes that the C code
 *		relies on, in one place, and the check that they still hold.
 *
 * sql/presence.sql creates these objects and points here: change both
 * together.  The SQL the extension runs (plans.c) names its columns, so
 * column order does not matter; names, types and index definitions do.  An
 * admin who alters one of them (drops an index, recreates it with other
 * columns, retypes or renames a column) gets error 55000 naming what
 * changed from every function, instead of a wrong answer or an internal
 * error.  The check runs once after any change to these relations (a
 * relcache invalidation) and is a flag test otherwise.
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

/* A column the C code reads or writes. */
typedef struct ColumnFact
{
	const char *name;
	Oid			type;
} ColumnFact;

/* The columns of presence.presences, by name (their order is free). */
static const ColumnFact presences_columns[] = {
	{"room", TEXTOID},
	{"channel", TEXTOID},
	{"user_id", TEXTOID},
	{"meta", JSONBOID},
	{"joined_at", TIMESTAMPTZOID},
	{"last_seen", TIMESTAMPTZOID},
};

static const ColumnFact rooms_columns[] = {
	{"name", TEXTOID},
	{"created_at", TIMESTAMPTZOID},
};

static const ColumnFact event_key_columns[] = {
	{"key", BYTEAOID},
};

/* An index the C code scans directly (lookup.c), by its key columns. */
typedef struct IndexFact
{
	const char *name;
	const char *definition;		/* for messages */
	const char *keys[2];
} IndexFact;

static const IndexFact channel_index = {
	"presences_channel_idx",
	"CREATE INDEX presences_channel_idx ON presence.presences (channel, room)",
	{"channel", "room"}
};

static const IndexFact room_user_index = {
	"presences_room_user_idx",
	"CREATE INDEX presences_room_user_idx ON presence.presences (room, user_id)",
	{"room", "user_id"}
};

static PresenceSchemaInfo schema;
static bool callbacks_registered = false;

/* SchemaChanged is the invalidation callback that forgets the checked schema. */
static void
SchemaChanged(Datum arg, Oid relid)
{
	if (!schema.valid || !OidIsValid(relid) || !OidIsValid(schema.event_key) ||
		relid == schema.presences || relid == schema.rooms ||
		relid == schema.event_key || relid == schema.channel_idx ||
		relid == schema.room_user_idx)
		schema.valid = false;
}

/* SchemaSyscacheChanged forgets the schema when a schema is renamed or dropped. */
static void
SchemaSyscacheChanged(Datum arg, int cacheid, uint32 hashvalue)
{
	schema.valid = false;
}

/* Altered reports that an object of the extension no longer looks as it must. */
static void
Altered(const char *what, const char *detail, const char *repair)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s was altered and presence cannot use it", what),
			 errdetail("%s", detail),
			 errhint("Restore it as the extension created it (%s), or drop and create the extension again.",
					 repair)));
}

/* ExtensionVersionIs tells whether the installed presence is that version. */
static bool
ExtensionVersionIs(const char *version)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	bool		result = false;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("presence"));
	rel = table_open(ExtensionRelationId, AccessShareLock);
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		result = !isnull && strcmp(TextDatumGetCString(d), version) == 0;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/* RelationIn returns the OID of relation relname of schema nsp, or errors. */
static Oid
RelationIn(Oid nsp, const char *relname, const char *repair)
{
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("relation presence.%s does not exist", relname),
				 errdetail("The presence extension needs it; it was dropped or renamed."),
				 errhint("Restore it as the extension created it (%s), or drop and create the extension again.",
						 repair)));
	return relid;
}

/*
 * CheckColumns checks that relid has each of the n columns with its type,
 * and returns the attribute numbers in attnos (when not NULL).
 */
static void
CheckColumns(Oid relid, const char *relname, const ColumnFact *cols, int n,
			 AttrNumber *attnos)
{
	for (int i = 0; i < n; i++)
	{
		AttrNumber	attno = get_attnum(relid, cols[i].name);
		char	   *what = psprintf("table presence.%s", relname);

		if (attno == InvalidAttrNumber)
			Altered(what,
					psprintf("Its column %s is missing (dropped or renamed).", cols[i].name),
					"see sql/presence.sql");
		if (get_atttype(relid, attno) != cols[i].type)
			Altered(what,
					psprintf("Its column %s has type %s, not %s.", cols[i].name,
							 format_type_be(get_atttype(relid, attno)),
							 format_type_be(cols[i].type)),
					psprintf("ALTER TABLE presence.%s ALTER COLUMN %s TYPE %s",
							 relname, cols[i].name, format_type_be(cols[i].type)));
		if (attnos != NULL)
			attnos[i] = attno;
	}
}

/*
 * CheckIndex checks that index fact of table relid is a valid, plain btree
 * index on exactly its key columns, and returns its OID.
 */
static Oid
CheckIndex(Oid nsp, Oid relid, const IndexFact *fact)
{
	Oid			indexid = RelationIn(nsp, fact->name, fact->definition);
	Relation	index = relation_open(indexid, AccessShareLock);
	Form_pg_index ind = index->rd_index;
	bool		ok;

	ok = index->rd_rel->relkind == RELKIND_INDEX &&
		index->rd_rel->relam == BTREE_AM_OID &&
		ind != NULL && ind->indrelid == relid &&
		ind->indisvalid && ind->indisready && ind->indislive &&
		ind->indnkeyatts == lengthof(fact->keys) &&
		RelationGetIndexPredicate(index) == NIL &&
		RelationGetIndexExpressions(index) == NIL;
	for (int k = 0; ok && k < lengthof(fact->keys); k++)
		ok = ind->indkey.values[k] == get_attnum(relid, fact->keys[k]) &&
			index->rd_opcintype[k] == TEXTOID &&
			(!OidIsValid(index->rd_indcollation[k]) ||
			 get_collation_isdeterministic(index->rd_indcollation[k]));
	relation_close(index, AccessShareLock);

	if (!ok)
		Altered(psprintf("index presence.%s", fact->name),
				psprintf("It must be a valid btree index on presence.presences (%s, %s) with a text operator class, a deterministic collation, no expression and no predicate.",
						 fact->keys[0], fact->keys[1]),
				fact->definition);
	return indexid;
}

/*
 * PresenceSchema returns the OIDs and attribute numbers of the extension's
 * relations, after checking that they still have the definitions the C code
 * relies on.  Errors with 55000 if one was altered.
 */
PresenceSchemaInfo *
PresenceSchema(void)
{
	Oid			nsp;
	AttrNumber	attnos[lengthof(presences_columns)];

	if (schema.valid)
		return &schema;

	if (!callbacks_registered)
	{
		CacheRegisterRelcacheCallback(SchemaChanged, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, SchemaSyscacheChanged, (Datum) 0);
		callbacks_registered = true;
	}

	nsp = get_namespace_oid("presence", false);
	schema.presences = RelationIn(nsp, "presences", "see sql/presence.sql");
	schema.rooms = RelationIn(nsp, "rooms", "see sql/presence.sql");
	/*
	 * presence.event_key came with 0.2.  A 0.1 installation whose library
	 * was replaced but which has not run ALTER EXTENSION presence UPDATE yet
	 * has none: it keeps working, its events unsigned as in 0.1, until the
	 * update creates the table (then any relcache invalidation, such as the
	 * update's ALTER TABLE, makes this check run again).
	 */
	schema.event_key = get_relname_relid("event_key", nsp);
	if (!OidIsValid(schema.event_key) && !ExtensionVersionIs("0.1"))
		schema.event_key = RelationIn(nsp, "event_key", "see sql/presence.sql");
	CheckColumns(schema.presences, "presences", presences_columns,
				 lengthof(presences_columns), attnos);
	CheckColumns(schema.rooms, "rooms", rooms_columns, lengthof(rooms_columns), NULL);
	if (OidIsValid(schema.event_key))
		CheckColumns(schema.event_key, "event_key", event_key_columns,
					 lengthof(event_key_columns), &schema.key_att);
	schema.room_att = attnos[0];
	schema.channel_att = attnos[1];
	schema.user_id_att = attnos[2];
	schema.meta_att = attnos[3];
	schema.last_seen_att = attnos[5];
	schema.channel_idx = CheckIndex(nsp, schema.presences, &channel_index);
	schema.room_user_idx = CheckIndex(nsp, schema.presences, &room_user_index);
	schema.valid = true;
	return &schema;
}
