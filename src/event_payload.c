/*-------------------------------------------------------------------------
 *
 * event_payload.c
 *		The JSON payload of an event (DESIGN.md section 6).  Keys always in
 *		this order; the first five never move:
 *
 *   {"room":..,"added":{..}|null,"removed":{..}|null,"updated":{..}|null,
 *    "bulk_change":false, <trailer>}
 *   {"room":..,"added":null,"removed":null,"updated":null,
 *    "bulk_change":true,"added_count":N,"removed_count":M, <trailer>}
 *
 * The trailer holds, each only when it applies and in this order:
 *   "pruned":true        the change was made by prune() or prune_job()
 *   "origin":"..."       presence.origin of the session that made it
 *   "seq":N              the same transaction already sent this very payload
 *                        (NOTIFY would fold the repeat away)
 *   "ts":N,"sig":"..."   presence.sign_events (event_sign.c)
 *
 * A payload always stays under NOTIFY's 8000 bytes: meta goes in only while
 * it fits, else the object says "meta":null,"meta_omitted":true.
 *
 *-------------------------------------------------------------------------
 */
#include "events.h"

#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/numeric.h"

/*
 * Bytes kept free after the body for seq, ts, sig and the closing brace;
 * names are at most 255 characters, so a body without meta always fits.
 */
#define TRAILER_RESERVE 256

/* AppendJsonString appends str as a JSON string, or null. */
static void
AppendJsonString(StringInfo buf, const char *str)
{
	if (str == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, str);
}

/* AppendJsonScalar appends one scalar of a jsonb value. */
static void
AppendJsonScalar(StringInfo buf, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			appendStringInfoString(buf, "null");
			break;
		case jbvBool:
			appendStringInfoString(buf, v->val.boolean ? "true" : "false");
			break;
		case jbvNumeric:
			appendStringInfoString(buf,
								   DatumGetCString(DirectFunctionCall1(numeric_out,
																	   NumericGetDatum(v->val.numeric))));
			break;
		case jbvString:
			{
				char	   *str = pnstrdup(v->val.string.val, v->val.string.len);

				escape_json(buf, str);
				pfree(str);
			}
			break;
		default:
			elog(ERROR, "presence: unexpected jsonb value type %d", (int) v->type);
	}
}

/* AppendJsonbToken appends one token of a jsonb iteration. */
static void
AppendJsonbToken(StringInfo buf, JsonbIteratorToken tok, JsonbValue *v,
				 bool *need_comma)
{
	switch (tok)
	{
		case WJB_BEGIN_ARRAY:
		case WJB_BEGIN_OBJECT:
			if (*need_comma)
				appendStringInfoChar(buf, ',');
			appendStringInfoChar(buf, tok == WJB_BEGIN_ARRAY ? '[' : '{');
			*need_comma = false;
			break;
		case WJB_END_ARRAY:
		case WJB_END_OBJECT:
			appendStringInfoChar(buf, tok == WJB_END_ARRAY ? ']' : '}');
			*need_comma = true;
			break;
		case WJB_KEY:
			if (*need_comma)
				appendStringInfoChar(buf, ',');
			AppendJsonScalar(buf, v);
			appendStringInfoChar(buf, ':');
			*need_comma = false;
			break;
		case WJB_VALUE:
		case WJB_ELEM:
			if (*need_comma)
				appendStringInfoChar(buf, ',');
			AppendJsonScalar(buf, v);
			*need_comma = true;
			break;
		default:
			break;
	}
}

/*
 * AppendJsonbCompact appends jb as JSON without the blanks jsonb's output
 * function puts after ':' and ',', so meta looks like the rest of the payload
 * and takes fewer of its 8000 bytes.  It stops early once buf passes limit
 * (the caller then leaves meta out).
 */
static void
AppendJsonbCompact(StringInfo buf, Jsonb *jb, int limit)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbIteratorToken tok;
	JsonbValue	v;
	bool		need_comma = false;
	bool		raw_scalar = JB_ROOT_IS_SCALAR(jb);
	int			depth = 0;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE && buf->len < limit)
	{
		bool		outer;

		if (tok == WJB_END_ARRAY || tok == WJB_END_OBJECT)
			depth--;
		/* A scalar root is stored as a one-element array: skip the array. */
		outer = raw_scalar && depth == 0 &&
			(tok == WJB_BEGIN_ARRAY || tok == WJB_END_ARRAY);
		if (!outer)
			AppendJsonbToken(buf, tok, &v, &need_comma);
		if (tok == WJB_BEGIN_ARRAY || tok == WJB_BEGIN_OBJECT)
			depth++;
	}
}

/* AppendMeta appends the meta of ev (or its omission). */
static void
AppendMeta(StringInfo buf, const PresenceEvent *ev, bool with_meta)
{
	if (!presence_event_meta || ev->meta_omitted || (!with_meta && !ev->meta_null))
		appendStringInfoString(buf, "null,\"meta_omitted\":true");
	else if (ev->meta_null || ev->meta == NULL)
		appendStringInfoString(buf, "null");
	else
		AppendJsonbCompact(buf, ev->meta, NOTIFY_PAYLOAD_LIMIT);
}

/* AppendPresence appends the object describing the single change of ev. */
static void
AppendPresence(StringInfo buf, const PresenceEvent *ev, bool with_meta)
{
	appendStringInfoString(buf, "{\"channel\":");
	AppendJsonString(buf, ev->channel);
	appendStringInfoString(buf, ",\"user_id\":");
	AppendJsonString(buf, ev->user_id);
	appendStringInfoString(buf, ",\"meta\":");
	AppendMeta(buf, ev, with_meta);
	if (ev->kind == CHANGE_ADDED)
		appendStringInfo(buf, ",\"user_joined\":%s", ev->flag ? "true" : "false");
	else if (ev->kind == CHANGE_REMOVED)
		appendStringInfo(buf, ",\"user_left\":%s", ev->flag ? "true" : "false");
	appendStringInfoChar(buf, '}');
}

/* AppendSlot appends one of "added", "removed", "updated": ev's object or null. */
static void
AppendSlot(StringInfo buf, const PresenceEvent *ev, ChangeKind slot,
		   bool with_meta)
{
	static const char *const names[] = {
		[CHANGE_ADDED] = ",\"added\":",
		[CHANGE_REMOVED] = ",\"removed\":",
		[CHANGE_UPDATED] = ",\"updated\":",
	};

	appendStringInfoString(buf, names[slot]);
	if (!ev->bulk && ev->kind == slot)
		AppendPresence(buf, ev, with_meta);
	else
		appendStringInfoString(buf, "null");
}

/* BuildBody writes the payload of ev up to the trailer's seq (not closed). */
static void
BuildBody(StringInfo buf, const PresenceEvent *ev, bool with_meta)
{
	resetStringInfo(buf);
	appendStringInfoString(buf, "{\"room\":");
	escape_json(buf, ev->room);
	AppendSlot(buf, ev, CHANGE_ADDED, with_meta);
	AppendSlot(buf, ev, CHANGE_REMOVED, with_meta);
	AppendSlot(buf, ev, CHANGE_UPDATED, with_meta);
	if (ev->bulk)
		appendStringInfo(buf,
						 ",\"bulk_change\":true,\"added_count\":" INT64_FORMAT
						 ",\"removed_count\":" INT64_FORMAT,
						 ev->added_count, ev->removed_count);
	else
		appendStringInfoString(buf, ",\"bulk_change\":false");
	if (ev->pruned)
		appendStringInfoString(buf, ",\"pruned\":true");
	if (presence_origin != NULL && presence_origin[0] != '\0')
	{
		appendStringInfoString(buf, ",\"origin\":");
		escape_json(buf, presence_origin);
	}
}

/*
 * PresenceBuildPayload writes the complete payload of ev into buf: body,
 * seq if the transaction already sent the same body, then ts and sig.
 */
void
PresenceBuildPayload(StringInfo buf, const PresenceEvent *ev)
{
	int			seq;

	BuildBody(buf, ev, true);
	if (buf->len >= NOTIFY_PAYLOAD_LIMIT - TRAILER_RESERVE)
		BuildBody(buf, ev, false);
	/* Names are at most 255 characters, so this cannot happen. */
	if (buf->len >= NOTIFY_PAYLOAD_LIMIT - TRAILER_RESERVE)
		elog(ERROR, "presence: event payload of %d bytes is too long", buf->len);

	seq = PendingPayloadSeen(buf->data, buf->len);
	if (seq > 0)
		appendStringInfo(buf, ",\"seq\":%d", seq);
	/* Not before ALTER EXTENSION UPDATE from 0.1 has created the key (schema.c). */
	if (presence_sign_events && OidIsValid(PresenceSchema()->event_key))
		PresenceSignPayload(buf);
	appendStringInfoChar(buf, '}');
}

/*
 * PresenceBuildBulkPayload writes into buf the bulk_change event of room
 * with the given counts: what a folded or re-announced room gets (counts 0:
 * re-read the room).
 */
void
PresenceBuildBulkPayload(StringInfo buf, const char *room, int64 added, int64 removed)
{
	PresenceEvent ev;

	memset(&ev, 0, sizeof(ev));
	ev.room = room;
	ev.bulk = true;
	ev.added_count = added;
	ev.removed_count = removed;
	PresenceBuildPayload(buf, &ev);
}
