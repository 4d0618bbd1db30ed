/*-------------------------------------------------------------------------
 *
 * presence_listen.c
 *		A small libpq client for the integration tests: a listener that
 *		prints presence events, and a commit-to-listener latency probe.
 *
 *	presence_listen listen CHANNEL SECONDS [COUNT]
 *		LISTENs on CHANNEL and prints each notification payload on its own
 *		line to stdout, flushed at once.  Says "presence_listen: listening
 *		on CHANNEL" on stderr once the LISTEN is in effect, so a test knows
 *		when to start making events.  Exits after SECONDS, or as soon as
 *		COUNT notifications arrived.  Exit status: 0 when COUNT arrived (or
 *		SECONDS passed and no COUNT was given), 1 when SECONDS passed before
 *		COUNT, 2 on a connection or usage error.
 *
 *	presence_listen latency N
 *		Two connections: a listener LISTENing on presence.notify_channel and
 *		a writer.  After 50 warm-up statements, the writer runs N statements
 *		one at a time (autocommit), alternately
 *			SELECT presence.add('latency', 'c<pid>.<i>')
 *			SELECT presence.remove('latency', 'c<pid>.<i-1>')
 *		so the table stays small (<pid>, the writer's backend, keeps runs
 *		apart).  For each it records CLOCK_MONOTONIC just
 *		before sending, when its result arrives and when the listener receives
 *		the matching event, and prints p50/p90/p99/max in ms of send -> event
 *		(an upper bound of commit-to-listener latency: it includes executing
 *		the statement), send -> result, and result -> event (a lower bound:
 *		the commit happens before the result is sent).  Exit status 0 when
 *		all N events arrived, 1 when some did not, 2 on an error.
 *
 * Connection parameters come from the libpq environment (PGHOST, PGPORT,
 * PGUSER, PGDATABASE...).  Build:
 *
 *	gcc -O2 -Wall -Wextra -Werror -I$(pg_config --includedir) \
 *		-o presence_listen presence_listen.c -lpq
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"

/* Statements run and not counted before the latency measurement. */
#define WARMUP_STATEMENTS 50

/* How long the latency probe waits for one statement's result and event. */
#define EVENT_TIMEOUT_S 5.0

/* Now returns CLOCK_MONOTONIC in seconds. */
static double
Now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Die prints a message (and the connection's error, if any) and exits 2. */
static void
Die(PGconn *conn, const char *what)
{
	fprintf(stderr, "presence_listen: %s", what);
	if (conn != NULL)
		fprintf(stderr, ": %s", PQerrorMessage(conn));
	else
		fputc('\n', stderr);
	exit(2);
}

/* Connect opens a connection from the libpq environment variables. */
static PGconn *
Connect(void)
{
	const char *const keywords[] = {"fallback_application_name", NULL};
	const char *const values[] = {"presence_listen", NULL};
	PGconn	   *conn = PQconnectdbParams(keywords, values, 0);

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		Die(conn, "could not connect");
	return conn;
}

/* Exec runs sql, which must succeed, and returns its result. */
static PGresult *
Exec(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "presence_listen: \"%s\" failed: %s",
				sql, PQerrorMessage(conn));
		exit(2);
	}
	return res;
}

/* Listen LISTENs on channel, quoting it as an identifier. */
static void
Listen(PGconn *conn, const char *channel)
{
	char	   *ident = PQescapeIdentifier(conn, channel, strlen(channel));
	char	   *sql;

	if (ident == NULL)
		Die(conn, "could not quote the channel name");
	sql = malloc(strlen(ident) + 8);
	if (sql == NULL)
		Die(NULL, "out of memory");
	sprintf(sql, "LISTEN %s", ident);
	PQclear(Exec(conn, sql));
	free(sql);
	PQfreemem(ident);
}

/*
 * WaitReadable waits until one of the n sockets in fds can be read or
 * timeout_s passes; returns poll()'s result.
 */
static int
WaitReadable(struct pollfd *fds, int n, double timeout_s)
{
	int			timeout_ms = timeout_s <= 0 ? 0 : (int) (timeout_s * 1000.0) + 1;
	int			rc;

	for (int i = 0; i < n; i++)
	{
		fds[i].events = POLLIN;
		fds[i].revents = 0;
	}
	do
		rc = poll(fds, n, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
	{
		perror("presence_listen: poll");
		exit(2);
	}
	return rc;
}

/* RunListen is the listen mode: print payloads until SECONDS or COUNT. */
static int
RunListen(const char *channel, double seconds, long count)
{
	PGconn	   *conn = Connect();
	double		deadline = Now() + seconds;
	long		received = 0;

	Listen(conn, channel);
	fprintf(stderr, "presence_listen: listening on %s\n", channel);

	while (count < 0 || received < count)
	{
		struct pollfd fds[1];
		PGnotify   *n;
		double		left = deadline - Now();

		if (left <= 0)
			break;
		fds[0].fd = PQsocket(conn);
		if (WaitReadable(fds, 1, left) == 0)
			continue;
		if (!PQconsumeInput(conn))
			Die(conn, "connection lost");
		while ((count < 0 || received < count) &&
			   (n = PQnotifies(conn)) != NULL)
		{
			printf("%s\n", n->extra);
			fflush(stdout);
			received++;
			PQfreemem(n);
		}
	}
	PQfinish(conn);

	if (count >= 0 && received < count)
	{
		fprintf(stderr,
				"presence_listen: timed out after %g s with %ld of %ld notifications\n",
				seconds, received, count);
		return 1;
	}
	return 0;
}

/* CompareDoubles orders doubles for qsort. */
static int
CompareDoubles(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Percentile returns the nearest-rank q-quantile of the n sorted values. */
static double
Percentile(const double *sorted, int n, double q)
{
	int			rank = (int) (q * n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

/* PrintStats sorts the n samples (seconds) and prints them in ms. */
static void
PrintStats(const char *label, double *samples, int n)
{
	if (n == 0)
	{
		printf("  %-34s no samples\n", label);
		return;
	}
	qsort(samples, n, sizeof(double), CompareDoubles);
	printf("  %-34s p50 %7.3f  p90 %7.3f  p99 %7.3f  max %7.3f ms\n",
		   label,
		   Percentile(samples, n, 0.50) * 1e3,
		   Percentile(samples, n, 0.90) * 1e3,
		   Percentile(samples, n, 0.99) * 1e3,
		   samples[n - 1] * 1e3);
}

/*
 * Measure runs statement number i of the latency probe (even: add channel
 * c<pid>.<i>, odd: remove c<pid>.<i-1>) and waits for both its result and its event.
 * Sets *result_s and *event_s to the delays after sending (event_s < 0 when
 * no event arrived in EVENT_TIMEOUT_S).  Returns how many unrelated
 * notifications the listener received meanwhile.
 */
static int
Measure(PGconn *writer, PGconn *listener, long i,
		double *result_s, double *event_s)
{
	bool		add = (i % 2 == 0);
	long		chan = add ? i : i - 1;
	char		sql[128];
	char		expect[128];
	double		sent;
	double		deadline;
	bool		have_result = false;
	bool		have_event = false;
	int			strays = 0;

	snprintf(sql, sizeof(sql),
			 add ? "SELECT presence.add('latency', 'c%d.%ld')"
			 : "SELECT presence.remove('latency', 'c%d.%ld')",
			 PQbackendPID(writer), chan);
	/* The event names the room first, then the one change. */
	snprintf(expect, sizeof(expect),
			 "{\"room\":\"latency\",\"added\":%s{\"channel\":\"c%d.%ld\",",
			 add ? "" : "null,\"removed\":", PQbackendPID(writer), chan);
	*event_s = -1;
	*result_s = -1;

	sent = Now();
	if (!PQsendQuery(writer, sql))
		Die(writer, "could not send a statement");
	deadline = sent + EVENT_TIMEOUT_S;

	while (!have_result || !have_event)
	{
		struct pollfd fds[2];
		int			nfds = 0;
		int			wi = -1;
		int			li = -1;
		double		left = deadline - Now();
		double		woke;
		PGnotify   *n;

		if (left <= 0)
		{
			if (!have_result)
				Die(NULL, "a statement got no result in time");
			break;				/* the event is missing */
		}
		if (!have_result)
		{
			wi = nfds;
			fds[nfds++].fd = PQsocket(writer);
		}
		li = nfds;
		fds[nfds++].fd = PQsocket(listener);
		if (WaitReadable(fds, nfds, left) == 0)
			continue;
		/* One clock reading for whatever this wake-up brings. */
		woke = Now();

		if (li >= 0 && fds[li].revents != 0)
		{
			if (!PQconsumeInput(listener))
				Die(listener, "listener connection lost");
			while ((n = PQnotifies(listener)) != NULL)
			{
				if (!have_event && strncmp(n->extra, expect, strlen(expect)) == 0)
				{
					have_event = true;
					*event_s = woke - sent;
				}
				else
					strays++;
				PQfreemem(n);
			}
		}

		if (wi >= 0 && fds[wi].revents != 0)
		{
			if (!PQconsumeInput(writer))
				Die(writer, "writer connection lost");
			while (!have_result && !PQisBusy(writer))
			{
				PGresult   *res = PQgetResult(writer);

				if (res == NULL)
				{
					have_result = true;
					break;
				}
				if (PQresultStatus(res) != PGRES_TUPLES_OK)
				{
					fprintf(stderr, "presence_listen: \"%s\" failed: %s",
							sql, PQerrorMessage(writer));
					exit(2);
				}
				if (*result_s < 0)
					*result_s = woke - sent;
				PQclear(res);
			}
		}
	}
	return strays;
}

/* RunLatency is the latency mode: n measured statements after a warm-up. */
static int
RunLatency(long n)
{
	PGconn	   *listener = Connect();
	PGconn	   *writer = Connect();
	PGresult   *res;
	char	   *channel;
	double	   *to_event = malloc(sizeof(double) * n);
	double	   *to_result = malloc(sizeof(double) * n);
	double	   *after_result = malloc(sizeof(double) * n);
	int			events = 0;
	int			strays = 0;
	long		total = WARMUP_STATEMENTS + n;
	double		started;

	if (to_event == NULL || to_result == NULL || after_result == NULL)
		Die(NULL, "out of memory");

	/* The channel presence sends on, as this database and role see it. */
	res = Exec(writer,
			   "SELECT COALESCE(pg_catalog.current_setting("
			   "'presence.notify_channel', true), 'presence')");
	channel = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	Listen(listener, channel);

	/* Even statement numbers add, odd ones remove; warm-up first. */
	started = Now();
	for (long i = 0; i < total; i++)
	{
		double		r;
		double		e;
		long		k = i - WARMUP_STATEMENTS;

		if (i == WARMUP_STATEMENTS)
			started = Now();
		strays += Measure(writer, listener, i, &r, &e);
		if (i == 0 && e < 0)
			Die(NULL, "no event arrived for the first statement; is presence.notify off?");
		if (k < 0)
			continue;
		to_result[k] = r;
		if (e >= 0)
		{
			after_result[events] = e - r;
			to_event[events++] = e;
		}
	}
	/* Leave the room empty: the last statement may have been an add. */
	if (total % 2 == 1)
	{
		double		r;
		double		e;

		strays += Measure(writer, listener, total, &r, &e);
	}

	printf("presence_listen latency: %ld statements (alternately presence.add"
		   " and presence.remove, autocommit, one at a time) after %d warm-up ones,"
		   " in %.2f s, on channel %s\n",
		   n, WARMUP_STATEMENTS, Now() - started, channel);
	PrintStats("send -> event received (ms):", to_event, events);
	PrintStats("send -> result received (ms):", to_result, (int) n);
	PrintStats("result -> event received (ms):", after_result, events);
	printf("  note: send -> event includes executing the statement, so it is an"
		   " upper bound of commit-to-listener latency; the commit happens"
		   " between send and result, so result -> event (negative when the"
		   " event came first) is a lower bound\n");
	if (strays > 0)
		printf("  note: %d other notifications on %s were ignored\n",
			   strays, channel);
	/* to_event is sorted by now (PrintStats). */
	if (events > 0)
		printf("summary: events received %d/%ld; commit-to-listener latency"
			   " (upper bound) p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms\n",
			   events, n,
			   Percentile(to_event, events, 0.50) * 1e3,
			   Percentile(to_event, events, 0.90) * 1e3,
			   Percentile(to_event, events, 0.99) * 1e3,
			   to_event[events - 1] * 1e3);
	else
		printf("summary: events received 0/%ld\n", n);

	PQfinish(writer);
	PQfinish(listener);
	free(channel);
	free(to_event);
	free(to_result);
	free(after_result);
	return events == n ? 0 : 1;
}

/* Usage prints how to call the program and exits 2. */
static void
Usage(void)
{
	fprintf(stderr,
			"usage: presence_listen listen CHANNEL SECONDS [COUNT]\n"
			"       presence_listen latency N\n"
			"Connection parameters come from PGHOST, PGPORT, PGUSER, PGDATABASE...\n");
	exit(2);
}

/* ParseNumber parses a non-negative number argument or exits with usage. */
static double
ParseNumber(const char *arg)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno != 0 || end == arg || *end != '\0' || v < 0)
		Usage();
	return v;
}

int
main(int argc, char **argv)
{
	if (argc >= 4 && argc <= 5 && strcmp(argv[1], "listen") == 0)
	{
		double		seconds = ParseNumber(argv[3]);
		long		count = argc == 5 ? (long) ParseNumber(argv[4]) : -1;

		return RunListen(argv[2], seconds, count);
	}
	if (argc == 3 && strcmp(argv[1], "latency") == 0)
	{
		long		n = (long) ParseNumber(argv[2]);

		if (n < 1)
			Usage();
		return RunLatency(n);
	}
	Usage();
	return 2;
}
