/*-------------------------------------------------------------------------
 *
 * compat.h
 *		What differs between the PostgreSQL versions presence builds on,
 *		13 to 17, in one place: the rest of the code is written for 15
 *		and uses the names below.  15 is the tested version; see the
 *		README for which versions are tested and which are only built.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PRESENCE_COMPAT_H
#define PRESENCE_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 130000
#error "presence needs PostgreSQL 13 or later"
#endif

/* The fields of Relation: 15 and later include this from other headers. */
#include "utils/rel.h"

#include "catalog/namespace.h"
#include "utils/guc.h"

/*
 * MarkGUCPrefixReserved (15) refuses any other setting under the prefix;
 * before 15, EmitWarningsOnPlaceholders only warns about them.
 */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * InitMaterializedSRF (15) sets a set-returning function up to return a
 * tuplestore: before 15, each function did this itself, as below.
 */
#if PG_VERSION_NUM < 150000
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/tuplestore.h"

#define MAT_SRF_USE_EXPECTED_DESC	0x01

/* InitMaterializedSRF prepares rsinfo->setResult and setDesc for fcinfo. */
static inline void
InitMaterializedSRF(FunctionCallInfo fcinfo, bits32 flags)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcontext;
	TupleDesc	tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (!(rsinfo->allowedModes & SFRM_Materialize) ||
		((flags & MAT_SRF_USE_EXPECTED_DESC) && rsinfo->expectedDesc == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("materialize mode required, but it is not allowed in this context")));

	/* The result must outlive this call: the query's memory holds it. */
	oldcontext = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (flags & MAT_SRF_USE_EXPECTED_DESC)
		tupdesc = CreateTupleDescCopy(rsinfo->expectedDesc);
	else if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult =
		tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
							  false, work_mem);
	rsinfo->setDesc = tupdesc;
	MemoryContextSwitchTo(oldcontext);
}
#endif

/*
 * Pinning search_path around the statements of plans.c, so that nothing of
 * the caller's path can change what they resolve to.  Until 16, an
 * override search path (pg_catalog alone) is pushed and popped: it costs
 * next to nothing, which matters on touch()'s path.  17 removed override
 * search paths: there search_path itself is set to "pg_catalog, pg_temp"
 * (the temporary schema last, where it can hide nothing) at a new GUC nest
 * level, as a function's SET clause does, and restored afterwards; when
 * the caller already runs with exactly that path (the functions that have
 * that SET clause), nothing is changed.  Either way an error in between
 * undoes the pin with the (sub)transaction's abort.
 *
 *		PresenceSearchPathPin pin = PresencePinSearchPath();
 *		... SPI_prepare / SPI_execute_plan ...
 *		PresenceUnpinSearchPath(pin);
 */
#if PG_VERSION_NUM >= 170000

#define PRESENCE_PINNED_SEARCH_PATH "pg_catalog, pg_temp"

/* The GUC nest level to restore, or -1 when nothing was changed. */
typedef int PresenceSearchPathPin;

/* PresencePinSearchPath sets search_path to the pinned path. */
static inline PresenceSearchPathPin
PresencePinSearchPath(void)
{
	int			nest_level;

	if (namespace_search_path != NULL &&
		strcmp(namespace_search_path, PRESENCE_PINNED_SEARCH_PATH) == 0)
		return -1;
	nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", PRESENCE_PINNED_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	return nest_level;
}

/* PresenceUnpinSearchPath restores the search_path the caller had. */
static inline void
PresenceUnpinSearchPath(PresenceSearchPathPin pin)
{
	if (pin >= 0)
		AtEOXact_GUC(true, pin);
}

#else							/* PG_VERSION_NUM < 170000 */

typedef int PresenceSearchPathPin;

/* PresencePinSearchPath pushes an override search path of pg_catalog alone. */
static inline PresenceSearchPathPin
PresencePinSearchPath(void)
{
	OverrideSearchPath pinned = {NIL, true, false};

	PushOverrideSearchPath(&pinned);
	return 0;
}

/* PresenceUnpinSearchPath pops it. */
static inline void
PresenceUnpinSearchPath(PresenceSearchPathPin pin)
{
	PopOverrideSearchPath();
}

#endif							/* PG_VERSION_NUM */

#endif							/* PRESENCE_COMPAT_H */
