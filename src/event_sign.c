/*-------------------------------------------------------------------------
 *
 * event_sign.c
 *		The event key and the signature that ends every payload, so that a
 *		listener can tell this extension's events from a NOTIFY forged by
 *		any role that can connect (anyone may NOTIFY on any channel).
 *
 * With presence.sign_events on, a payload ends with
 *
 *     ,"ts":<microseconds since 1970-01-01 UTC>,"sig":"<64 hex digits>"}
 *
 * where sig = HMAC-SHA256(key, every byte of the payload before ,"sig":").
 * The key is 32 random bytes in presence.event_key, created with the
 * extension; presence.event_key() returns it (hex) to the roles granted
 * EXECUTE on it, and presence.rotate_event_key() replaces it.  ts lets a
 * listener refuse a genuine event replayed later.
 *
 * Backends cache the key; rotate_event_key() sends a relcache invalidation
 * for presence.event_key, on which they forget it.
 *
 *-------------------------------------------------------------------------
 */
#include "events.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "common/sha2.h"		/* and common/hmac.h, from compat.h */
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"

#define EVENT_KEY_BYTES 32

static uint8 key[EVENT_KEY_BYTES];
static bool key_valid = false;
static Oid	key_relid = InvalidOid;
static bool callback_registered = false;

/* KeyChanged is the relcache callback that forgets the cached key. */
static void
KeyChanged(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == key_relid)
		key_valid = false;
}

/* LoadKey reads the key from presence.event_key into the cache. */
static void
LoadKey(void)
{
	PresenceSchemaInfo *schema = PresenceSchema();
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	Snapshot	snapshot;
	bool		found = false;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(KeyChanged, (Datum) 0);
		callback_registered = true;
	}

	key_relid = schema->event_key;
	rel = table_open(schema->event_key, AccessShareLock);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, schema->key_att, RelationGetDescr(rel), &isnull);
		bytea	   *b;

		if (isnull)
			continue;
		b = DatumGetByteaPP(d);
		if (VARSIZE_ANY_EXHDR(b) != EVENT_KEY_BYTES)
			continue;
		memcpy(key, VARDATA_ANY(b), EVENT_KEY_BYTES);
		found = true;
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);

	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("presence.event_key holds no key"),
				 errdetail("Events are signed (presence.sign_events is on) with the key in presence.event_key."),
				 errhint("Run SELECT presence.rotate_event_key(); as a superuser.")));
	key_valid = true;
}

/* AppendHex appends len bytes of data as lowercase hex digits. */
static void
AppendHex(StringInfo buf, const uint8 *data, int len)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < len; i++)
	{
		appendStringInfoChar(buf, digits[data[i] >> 4]);
		appendStringInfoChar(buf, digits[data[i] & 0x0f]);
	}
}

/*
 * PresenceSignPayload appends ,"ts":..,"sig":".." to the open payload in
 * buf (without its closing brace).
 */
void
PresenceSignPayload(StringInfo buf)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		unix_us = now + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	pg_hmac_ctx *ctx;

	if (!key_valid)
		LoadKey();

	appendStringInfo(buf, ",\"ts\":" INT64_FORMAT, unix_us);

	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL ||
		pg_hmac_init(ctx, key, EVENT_KEY_BYTES) < 0 ||
		pg_hmac_update(ctx, (uint8 *) buf->data, buf->len) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		const char *why = ctx != NULL ? pg_hmac_error(ctx) : "out of memory";

		if (ctx != NULL)
			pg_hmac_free(ctx);
		elog(ERROR, "presence: could not sign an event: %s", why);
	}
	pg_hmac_free(ctx);

	appendStringInfoString(buf, ",\"sig\":\"");
	AppendHex(buf, mac, sizeof(mac));
	appendStringInfoChar(buf, '"');
}

PG_FUNCTION_INFO_V1(presence_event_key);

/* presence_event_key returns the event key as 64 hex digits. */
Datum
presence_event_key(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	LoadKey();
	initStringInfo(&buf);
	AppendHex(&buf, key, EVENT_KEY_BYTES);
	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}

PG_FUNCTION_INFO_V1(presence_rotate_event_key);

/*
 * presence_rotate_event_key replaces the event key with 32 new random
 * bytes; every backend signs with it from its next transaction on.
 */
Datum
presence_rotate_event_key(PG_FUNCTION_ARGS)
{
	bytea	   *newkey = palloc(VARHDRSZ + EVENT_KEY_BYTES);
	Datum		values[1];

	SET_VARSIZE(newkey, VARHDRSZ + EVENT_KEY_BYTES);
	if (!pg_strong_random(VARDATA(newkey), EVENT_KEY_BYTES))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random event key")));
	values[0] = PointerGetDatum(newkey);

	SPI_connect();
	PresenceExec(STMT_ROTATE_KEY, values, NULL, false, 0);
	SPI_finish();

	CacheInvalidateRelcacheByRelid(PresenceSchema()->event_key);
	key_valid = false;
	PG_RETURN_VOID();
}
