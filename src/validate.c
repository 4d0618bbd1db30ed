/*-------------------------------------------------------------------------
 *
 * validate.c
 *		Argument checks shared by every SQL-callable function: the single
 *		place where bad input is turned into an ERROR, before anything is
 *		read or written; and one text comparison the C code shares.
 *
 *-------------------------------------------------------------------------
 */
#include "presence.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"

/* CheckLength rejects a value longer than PRESENCE_NAME_MAX_CHARS characters. */
static void
CheckLength(text *value, const char *argname)
{
	int			nbytes = VARSIZE_ANY_EXHDR(value);
	int			nchars;

	/* Every character takes at least one byte: short strings need no count. */
	if (nbytes <= PRESENCE_NAME_MAX_CHARS)
		return;

	nchars = pg_mbstrlen_with_len(VARDATA_ANY(value), nbytes);
	if (nchars > PRESENCE_NAME_MAX_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s is too long", argname),
				 errdetail("The %s has %d characters; the limit is %d.",
						   argname, nchars, PRESENCE_NAME_MAX_CHARS)));
}

/* PresenceArgName returns a room or channel argument, which must be 1 to 255 characters. */
text *
PresenceArgName(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	text	   *value;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname)));

	value = PG_GETARG_TEXT_PP(argno);
	if (VARSIZE_ANY_EXHDR(value) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname)));

	CheckLength(value, argname);
	return value;
}

/*
 * PresenceArgUserId returns a user_id argument, or NULL for an anonymous
 * presence.  An empty string is refused rather than taken as a user: it is
 * almost always a missing value that should have been NULL.
 */
text *
PresenceArgUserId(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	text	   *value;

	if (PG_ARGISNULL(argno))
		return NULL;

	value = PG_GETARG_TEXT_PP(argno);
	if (VARSIZE_ANY_EXHDR(value) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname),
				 errhint("Pass NULL for an anonymous presence.")));

	CheckLength(value, argname);
	return value;
}

/*
 * PresenceArgMeta returns a meta argument (NULL for SQL NULL), refusing one
 * larger than presence.max_meta_size with 54000: meta is per-connection
 * state (status, device, typing), and a caller must not be able to make the
 * server store and copy megabytes per presence.
 */
Jsonb *
PresenceArgMeta(FunctionCallInfo fcinfo, int argno)
{
	Jsonb	   *meta;
	Size		size;

	if (PG_ARGISNULL(argno))
		return NULL;

	meta = PG_GETARG_JSONB_P(argno);
	size = VARSIZE(meta);
	if (size > (Size) presence_max_meta_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("meta is too large"),
				 errdetail("The meta takes %zu bytes as jsonb; presence.max_meta_size is %d bytes.",
						   size, presence_max_meta_size),
				 errhint("Keep large state elsewhere and put a reference to it in meta.")));
	return meta;
}

/*
 * PresenceTextEqual tells whether two text datums hold the same bytes (a
 * room, channel or user_id changed or not; no collation is involved).
 */
bool
PresenceTextEqual(Datum a, Datum b)
{
	text	   *ta = DatumGetTextPP(a);
	text	   *tb = DatumGetTextPP(b);

	return VARSIZE_ANY_EXHDR(ta) == VARSIZE_ANY_EXHDR(tb) &&
		memcmp(VARDATA_ANY(ta), VARDATA_ANY(tb), VARSIZE_ANY_EXHDR(ta)) == 0;
}
