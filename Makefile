# PGXS build of the presence extension.
#
#   make && make install        build presence.so, install it and the SQL script
#   make installcheck           regression + isolation tests on temporary instances
#                               (run as a non-root OS user: initdb refuses root)
#   make dist                   presence-<version>.zip of the committed tree (PGXN)
#
# The README's two commands (test/demo.sh, test/run_all.sh) wrap these.

EXTENSION    = presence
EXTVERSION   = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" presence.control)

MODULE_big   = presence
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The current version's install script is built from sql/presence.sql (and
# git-ignored); the committed sql/presence--A--B.sql upgrade scripts and the
# frozen install scripts of older versions (sql/presence--0.1.sql, kept so
# that CREATE EXTENSION presence VERSION '0.1' can test the upgrade path) are
# installed as they are.
DATA_built   = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA         = $(filter-out sql/$(EXTENSION).sql $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))
EXTRA_CLEAN  = $(DATA_built)

PG_CPPFLAGS += -Isrc -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

TESTS        = $(sort $(wildcard test/sql/*.sql))
REGRESS      = $(patsubst test/sql/%.sql,%,$(TESTS))
# Inputs come from test/sql and test/specs; pg_regress looks for expected
# outputs in <outputdir>/expected first, which is the top-level expected/.
REGRESS_OPTS = --inputdir=test \
               --temp-instance=test/tmp_regress --temp-config=test/presence.conf \
               --temp-config=test/regress.conf

SPECS        = $(sort $(wildcard test/specs/*.spec))
ISOLATION    = $(patsubst test/specs/%.spec,%,$(SPECS))
ISOLATION_OPTS = --inputdir=test --outputdir=. \
               --temp-instance=test/tmp_isolation --temp-config=test/presence.conf \
               --temp-config=test/regress.conf

# PRESENCE_WORKER=1 runs both suites with presence preloaded (worker mode:
# a background worker sends the events); test/run_all.sh runs both modes.
ifdef PRESENCE_WORKER
REGRESS_OPTS   += --temp-config=test/worker.conf
ISOLATION_OPTS += --temp-config=test/worker.conf
endif

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# One test database name for both suites, so test/presence.conf can point
# pg_cron's cron.database_name at it.
CONTRIB_TESTDB   = presence_test
ISOLATION_TESTDB = presence_test

sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION).sql
	cp $< $@

# PGXS does not track header dependencies: every object includes presence.h.
$(OBJS): src/presence.h src/compat.h

# make dist: the release archive for PGXN, presence-<version>.zip with every
# file under presence-<version>/, made by git archive from the committed tree
# (uncommitted changes are not in it). META.json must carry the same version,
# as PGXN writes it (semantic versioning: 0.2 is 0.2.0).
DISTNAME = $(EXTENSION)-$(EXTVERSION)
dist:
	@grep -Eq '"version": *"$(subst .,\.,$(EXTVERSION))(\.0)?"' META.json || \
		{ echo "META.json does not say version $(EXTVERSION) (presence.control)" >&2; exit 1; }
	@git diff --quiet HEAD || echo "warning: uncommitted changes are not in $(DISTNAME).zip" >&2
	git archive --format=zip --prefix=$(DISTNAME)/ --output=$(DISTNAME).zip HEAD
.PHONY: dist
