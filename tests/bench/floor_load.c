/*
 * floor_load - the load floor of benchmark 2: the IDs of a generated credsync-sim dataset
 * (GID_sim_G@@@dev-NNNNNNN), bulk-loaded into a fresh SQLite database with credsync's pragmas
 * (WAL, synchronous=NORMAL, 8 MiB cache) as one indexed table in one transaction, with nothing
 * fetched.  The least it can cost to hold the inventory in SQLite.  Prints one JSON line.
 *
 *   floor_load --db PATH --groups 10 --devices 100000
 */
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "db", required_argument, NULL, 'd' }, { "groups", required_argument, NULL, 'g' },
		{ "devices", required_argument, NULL, 'n' }, { NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	long groups = 10, devices = 100000, gi, di;
	sqlite3 *db;
	sqlite3_stmt *s;
	char id[64];
	int c;
	int64_t t0;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': path = optarg; break;
		case 'g': groups = atol(optarg); break;
		case 'n': devices = atol(optarg); break;
		default: return 64;
		}
	}
	if (!path)
		return 64;
	unlink(path);
	t0 = util_mono_ms();
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
			     " PRAGMA cache_size = -8192;"
			     " CREATE TABLE ids (group_key INTEGER, client_id TEXT,"
			     "  PRIMARY KEY (group_key, client_id)) WITHOUT ROWID; BEGIN",
			     NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO ids VALUES (?1, ?2)", -1, &s, NULL) != SQLITE_OK) {
		fprintf(stderr, "floor_load: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	for (gi = 1; gi <= groups; gi++) {
		for (di = 1; di <= devices; di++) {
			int n = snprintf(id, sizeof(id), "GID_sim_%ld@@@dev-%07ld", gi, di);

			sqlite3_bind_int64(s, 1, gi);
			sqlite3_bind_text(s, 2, id, n, SQLITE_STATIC);
			if (sqlite3_step(s) != SQLITE_DONE) {
				fprintf(stderr, "floor_load: %s\n", sqlite3_errmsg(db));
				return 1;
			}
			sqlite3_reset(s);
		}
	}
	sqlite3_finalize(s);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "floor_load: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_close(db);
	printf("{\"seconds\": %.3f, \"ids\": %ld}\n", (double)(util_mono_ms() - t0) / 1000.0,
	       groups * devices);
	return 0;
}
