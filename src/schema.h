/* schema.h - the migrations of schema/, embedded at build time by cmake/embed_schema.cmake. */
#ifndef CREDSYNC_SCHEMA_H
#define CREDSYNC_SCHEMA_H

struct schema_migration {
	int version;       /* the NNN of NNN_name.sql; PRAGMA user_version after applying it */
	const char *name;  /* the file name, for messages */
	const char *sql;
};

extern const struct schema_migration schema_migrations[];
extern const int schema_migration_count;

#endif
