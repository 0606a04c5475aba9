package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations build the schema; migrations[i] takes the database from
// user_version i to i+1. Append only: never edit a migration that shipped.
var migrations = []string{
	// 1: the initial schema. Times are unix milliseconds, except
	// tombstones.at and sessions.created_at (unix nanoseconds: they are
	// shown and sorted, not compared with now).
	`CREATE TABLE sessions (
		key        TEXT PRIMARY KEY,
		handle     TEXT NOT NULL UNIQUE,
		subject    TEXT NOT NULL,
		idp_sid    TEXT NOT NULL DEFAULT '',
		version    INTEGER NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		record     BLOB NOT NULL
	);
	CREATE INDEX sessions_subject ON sessions(subject, created_at);
	CREATE INDEX sessions_idp_sid ON sessions(idp_sid) WHERE idp_sid <> '';
	CREATE INDEX sessions_expires_at ON sessions(expires_at);
	CREATE TABLE tombstones (
		key        TEXT PRIMARY KEY,
		cause      TEXT NOT NULL,
		at         INTEGER NOT NULL,
		ttl_ms     INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);
	CREATE INDEX tombstones_expires_at ON tombstones(expires_at);
	CREATE TABLE locks (
		name       TEXT PRIMARY KEY,
		fence      TEXT NOT NULL,
		expires_at INTEGER NOT NULL
	);
	CREATE TABLE replay (
		id         TEXT PRIMARY KEY,
		expires_at INTEGER NOT NULL
	);
	CREATE INDEX replay_expires_at ON replay(expires_at);`,
}

// schemaVersion is the user_version Open migrates a database to.
func schemaVersion() int { return len(migrations) }

// migrate brings the schema to SchemaVersion, one migration per transaction
// (user_version is part of the transaction, so a failed step leaves the
// previous version intact).
func migrate(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", unavailable(err))
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this BFF understands (%d)", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", v+1, unavailable(err))
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", v+1, unavailable(err))
		}
	}
	return nil
}
