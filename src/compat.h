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
 * HMAC (event_sign.c): common/hmac.h came in 14, pg_hmac_error in 15.  On
 * 13, HMAC-SHA256 (RFC 2104) is built here on 13's SHA-256 functions, with
 * the same names; SHA-256 is the only hash it offers.
 */
#if PG_VERSION_NUM >= 140000
#include "common/hmac.h"
#if PG_VERSION_NUM < 150000
#define pg_hmac_error(ctx) "HMAC computation failed"
#endif
#else							/* PG_VERSION_NUM < 140000 */
#include "common/sha2.h"

#define PG_SHA256 0
#define pg_hmac_error(ctx) "HMAC computation failed"

typedef struct pg_hmac_ctx
{
	pg_sha256_ctx inner;		/* H((K ^ ipad) || message) */
	pg_sha256_ctx outer;		/* H((K ^ opad) || inner hash) */
} pg_hmac_ctx;

/* pg_hmac_create allocates a context (SHA-256 only). */
static inline pg_hmac_ctx *
pg_hmac_create(int type)
{
	return (type == PG_SHA256) ? palloc0(sizeof(pg_hmac_ctx)) : NULL;
}

/* pg_hmac_init starts the inner and outer hashes with the padded key. */
static inline int
pg_hmac_init(pg_hmac_ctx *ctx, const uint8 *key, size_t len)
{
	uint8		pad[PG_SHA256_BLOCK_LENGTH];
	uint8		keyhash[PG_SHA256_DIGEST_LENGTH];

	if (len > PG_SHA256_BLOCK_LENGTH)
	{
		/* A key longer than a block is replaced by its hash. */
		pg_sha256_init(&ctx->inner);
		pg_sha256_update(&ctx->inner, key, len);
		pg_sha256_final(&ctx->inner, keyhash);
		key = keyhash;
		len = sizeof(keyhash);
	}
	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < len; i++)
		pad[i] ^= key[i];
	pg_sha256_init(&ctx->inner);
	pg_sha256_update(&ctx->inner, pad, sizeof(pad));
	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < len; i++)
		pad[i] ^= key[i];
	pg_sha256_init(&ctx->outer);
	pg_sha256_update(&ctx->outer, pad, sizeof(pad));
	return 0;
}

/* pg_hmac_update adds data to the message. */
static inline int
pg_hmac_update(pg_hmac_ctx *ctx, const uint8 *data, size_t len)
{
	pg_sha256_update(&ctx->inner, data, len);
	return 0;
}

/* pg_hmac_final writes the 32-byte MAC to dest (len bytes of room). */
static inline int
pg_hmac_final(pg_hmac_ctx *ctx, uint8 *dest, size_t len)
{
	uint8		inner[PG_SHA256_DIGEST_LENGTH];

	if (len < PG_SHA256_DIGEST_LENGTH)
		return -1;
	pg_sha256_final(&ctx->inner, inner);
	pg_sha256_update(&ctx->outer, inner, sizeof(inner));
	pg_sha256_final(&ctx->outer, dest);
	return 0;
}

/* pg_hmac_free frees the context. */
static inline void
pg_hmac_free(pg_hmac_ctx *ctx)
{
	if (ctx != NULL)
		pfree(ctx);
}
#endif							/* PG_VERSION_NUM */

/*
 * The backend's local transaction id (user_locks.c) moved into
 * PGPROC.vxid in 17, and LockHeldByMe gained an "or stronger" argument.
 */
#if PG_VERSION_NUM >= 170000
#define PresenceMyLocalXid() (MyProc->vxid.lxid)
#define PresenceLockHeldByMe(tag, mode) LockHeldByMe((tag), (mode), false)
#else
#define PresenceMyLocalXid() (MyProc->lxid)
#define PresenceLockHeldByMe(tag, mode) LockHeldByMe((tag), (mode))
#endif

/*
 * Worker mode (event_queue.c, worker.c).  shmem_request_hook came in 15:
 * before, _PG_init asks for shared memory itself, which EventQueueInit does
 * through PresenceRequestShmemNow() by calling the function it installed in
 * the emulated hook.  ProcessUtility_hook gained readOnlyTree in 14, and
 * hash_create() its HASH_STRINGS flag (string keys were the default).
 */
#if PG_VERSION_NUM < 150000
typedef void (*shmem_request_hook_type) (void);
#define shmem_request_hook presence_shmem_request_hook
extern shmem_request_hook_type presence_shmem_request_hook;
#define PresenceRequestShmemNow() \
	(presence_shmem_request_hook ? presence_shmem_request_hook() : (void) 0)
#else
#define PresenceRequestShmemNow() ((void) 0)
#endif

#if PG_VERSION_NUM >= 140000
#define PresenceCallProcessUtility(fn, pstmt, q, ro, ctx, params, env, dest, qc) \
	(fn) ((pstmt), (q), (ro), (ctx), (params), (env), (dest), (qc))
#else
#define PresenceCallProcessUtility(fn, pstmt, q, ro, ctx, params, env, dest, qc) \
	(fn) ((pstmt), (q), (ctx), (params), (env), (dest), (qc))
#define HASH_STRINGS 0
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
