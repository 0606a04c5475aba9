// Package sqlite is the single-node default session store: one SQLite
// database file (modernc.org/sqlite, pure Go, no cgo), so sessions survive a
// restart of the BFF without any service to run beside it.
//
// Choices, and why:
//
//   - WAL journal, synchronous=NORMAL: readers never block the writer and a
//     commit costs no fsync of the main file; a power cut may lose the last
//     few commits (a few logins or refreshes) but never corrupts the file.
//   - One writer connection (its own *sql.DB with one open connection) and
//     BEGIN IMMEDIATE transactions: writes queue in Go instead of fighting
//     for SQLite's lock and failing with "database is locked". Reads use a
//     separate pool and run in parallel.
//   - Expiry is checked in every query (expires_at > now), so an expired row
//     is never returned even before the periodic purge deletes it.
//   - Update is a compare-and-swap on the version column, so a stale request
//     cannot overwrite a rotated refresh token; Touch never creates a row, so
//     a request in flight cannot resurrect a killed session.
//   - The file and its -wal and -shm companions are created 0600: they hold
//     sealed tokens and the keys that identify sessions.
//   - The schema is versioned with PRAGMA user_version and migrated on
//     start by an ordered list of migrations; a file written by a newer
//     version of the BFF is refused rather than guessed at.
//
// The Notifier is in-process (sessionstore.Broadcaster): a database file is
// served by one BFF process, so there is no other instance to tell.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/bffproxy/bff/sessionstore"
)

// Defaults.
const (
	DefaultPurgeInterval = time.Minute
	// busyTimeout is how long a connection waits for SQLite's lock. With one
	// writer it only matters against a checkpoint or another process that
	// opened the file by mistake.
	busyTimeout      = 5 * time.Second
	defaultListLimit = 100
	maxListLimit     = 1000
)

// Options configure a Store. The zero value gives the defaults.
type Options struct {
	// PurgeInterval is how often expired sessions, tombstones, locks and
	// replay entries are deleted (default one minute). Queries ignore
	// expired rows regardless; the purge only reclaims the space.
	PurgeInterval time.Duration
}

// Store is the SQLite backend. Open it with Open and release it with Close.
type Store struct {
	// Broadcaster is the Notifier (single process).
	sessionstore.Broadcaster

	path   string
	writer *sql.DB // exactly one connection: all writes are serialized here
	reader *sql.DB // read-only pool

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	stop      chan struct{}
	done      chan struct{}
}

var _ sessionstore.Store = (*Store)(nil)

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

// Open opens (creating if needed) the database at path, migrates its schema
// and starts the purge goroutine. ctx bounds the opening only.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: open: %q is not a plain file path", path)
	}
	if opts.PurgeInterval <= 0 {
		opts.PurgeInterval = DefaultPurgeInterval
	}
	if err := createPrivate(path); err != nil {
		return nil, err
	}

	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	writer, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)

	// The writer connects first so the file is in WAL mode before any reader
	// opens it.
	if err := migrate(ctx, writer); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One process serves a database file, so any lock found at start-up was
	// held by a process that died (a crash mid-refresh); honouring it would
	// stall that session's refresh until the lock expired.
	if _, err := writer.ExecContext(ctx, `DELETE FROM locks`); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: clear stale locks: %w", path, err)
	}
	// -wal and -shm exist now; SQLite gives them the main file's mode, but
	// a umask or an older file may have left them wider.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			writer.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
	}

	rq := url.Values{}
	rq.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	rq.Add("_pragma", "query_only(1)")
	rq.Add("_pragma", "foreign_keys(1)")
	reader, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Each connection holds its own page cache; a few per CPU is all that
	// can run at once anyway.
	readers := max(4, 2*runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	if err := reader.PingContext(ctx); err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	s := &Store{
		path:   path,
		writer: writer,
		reader: reader,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go s.purgeLoop(opts.PurgeInterval)
	return s, nil
}

// createPrivate makes sure the database file exists with mode 0600 before
// SQLite opens it, so it is never readable by others, not even for a moment.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	return nil
}

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

var errClosed = fmt.Errorf("%w: sqlite store closed", sessionstore.ErrUnavailable)

// unavailable marks errors that mean "try again later" (a busy or locked
// database, a closed store) as sessionstore.ErrUnavailable, so the BFF
// answers 503 and keeps the session instead of treating it as gone.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
			return fmt.Errorf("%w: %w", sessionstore.ErrUnavailable, err)
		}
	}
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "database is closed") {
		return fmt.Errorf("%w: %w", sessionstore.ErrUnavailable, err)
	}
	return err
}

func (s *Store) purgeLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			// A failed purge is retried at the next tick; queries ignore
			// expired rows meanwhile.
			_ = s.purge(context.Background())
		}
	}
}

// purge deletes every expired row.
func (s *Store) purge(ctx context.Context) error {
	now := time.Now().UnixMilli()
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, table := range []string{"sessions", "tombstones", "locks", "replay"} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE expires_at <= ?", now); err != nil {
			return fmt.Errorf("sqlite: purge %s: %w", table, unavailable(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: purge: %w", unavailable(err))
	}
	return nil
}

// Close stops the purge and closes the database. Later calls fail with
// sessionstore.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.done
		s.closeErr = errors.Join(s.reader.Close(), s.writer.Close())
	})
	return s.closeErr
}

// Ping checks that both pools answer.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := s.reader.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", unavailable(err))
	}
	if err := s.writer.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", unavailable(err))
	}
	return nil
}

// begin starts a write transaction (BEGIN IMMEDIATE) on the writer.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, unavailable(err)
	}
	return tx, nil
}

// exec runs one write statement on the writer.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	res, err := s.writer.ExecContext(ctx, query, args...)
	return res, unavailable(err)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// Create stores a new session with Version 1. An expired row still holding
// the key or handle (not yet purged) is replaced; a live one is ErrConflict.
func (s *Store) Create(ctx context.Context, sess *sessionstore.Session) error {
	if err := sessionstore.CheckHandle(sess); err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	rec, err := sessionstore.Encode(sess)
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UnixMilli()
	if _, err := tx.ExecContext(ctx,
		"DELETE FROM sessions WHERE (key = ? OR handle = ?) AND expires_at <= ?",
		sess.Key, sess.Handle, now); err != nil {
		return fmt.Errorf("sqlite: create session: %w", unavailable(err))
	}
	res, err := tx.ExecContext(ctx,
		`INSERT INTO sessions (key, handle, subject, idp_sid, version, created_at, expires_at, record)
		 VALUES (?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT DO NOTHING`,
		sess.Key, sess.Handle, sess.Subject, sess.IdPSID, sess.CreatedAt.UnixNano(), ms(sess.ExpiresAt), rec)
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", unavailable(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: create session: key or handle taken: %w", sessionstore.ErrConflict)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: create session: %w", unavailable(err))
	}
	sess.Version = 1
	return nil
}

const sessionColumns = "key, version, record"

// scanSession reads one row of sessionColumns.
func scanSession(sc interface{ Scan(...any) error }) (*sessionstore.Session, error) {
	var (
		key     string
		version int64
		rec     []byte
	)
	if err := sc.Scan(&key, &version, &rec); err != nil {
		return nil, err
	}
	return sessionstore.Decode(key, version, rec)
}

func (s *Store) getOne(ctx context.Context, op, where string, arg any) (*sessionstore.Session, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	row := s.reader.QueryRowContext(ctx,
		"SELECT "+sessionColumns+" FROM sessions WHERE "+where+" AND expires_at > ?", arg, time.Now().UnixMilli())
	sess, err := scanSession(row)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("sqlite: %s: %w", op, sessionstore.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("sqlite: %s: %w", op, unavailable(err))
	}
	return sess, nil
}

// Get returns the live session under key.
func (s *Store) Get(ctx context.Context, key string) (*sessionstore.Session, error) {
	return s.getOne(ctx, "get session", "key = ?", key)
}

// GetByHandle returns the live session with that handle.
func (s *Store) GetByHandle(ctx context.Context, handle string) (*sessionstore.Session, error) {
	if handle == "" {
		return nil, fmt.Errorf("sqlite: get session by handle: %w", sessionstore.ErrNotFound)
	}
	return s.getOne(ctx, "get session by handle", "handle = ?", handle)
}

// Update replaces the session if its stored version equals sess.Version.
// Changing Handle, Subject or IdPSID is refused with ErrInvalid: the indexes
// are built on them.
func (s *Store) Update(ctx context.Context, sess *sessionstore.Session) error {
	rec, err := sessionstore.Encode(sess)
	if err != nil {
		return fmt.Errorf("sqlite: update session: %w", err)
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: update session: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UnixMilli()
	res, err := tx.ExecContext(ctx,
		`UPDATE sessions SET version = version + 1, created_at = ?, expires_at = ?, record = ?
		 WHERE key = ? AND version = ? AND expires_at > ? AND handle = ? AND subject = ? AND idp_sid = ?`,
		sess.CreatedAt.UnixNano(), ms(sess.ExpiresAt), rec,
		sess.Key, sess.Version, now, sess.Handle, sess.Subject, sess.IdPSID)
	if err != nil {
		return fmt.Errorf("sqlite: update session: %w", unavailable(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: update session: %w", err)
	}
	if n == 0 {
		// Nothing matched: find out why, inside the same transaction.
		var (
			version                 int64
			handle, subject, idpSID string
		)
		err := tx.QueryRowContext(ctx,
			"SELECT version, handle, subject, idp_sid FROM sessions WHERE key = ? AND expires_at > ?",
			sess.Key, now).Scan(&version, &handle, &subject, &idpSID)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlite: update session: %w", sessionstore.ErrNotFound)
		case err != nil:
			return fmt.Errorf("sqlite: update session: %w", unavailable(err))
		case version != sess.Version:
			return fmt.Errorf("sqlite: update session: stored version %d, have %d: %w", version, sess.Version, sessionstore.ErrConflict)
		default:
			return fmt.Errorf("sqlite: update session: identity fields changed: %w", sessionstore.ErrInvalid)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: update session: %w", unavailable(err))
	}
	sess.Version++
	return nil
}

// Touch sets LastSeen and ExpiresAt of a live session, keeping its version.
// It reads, changes and writes the record in one write transaction, so it
// cannot interleave with an Update.
func (s *Store) Touch(ctx context.Context, key string, lastSeen, expiresAt time.Time) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: touch session: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UnixMilli()
	sess, err := scanSession(tx.QueryRowContext(ctx,
		"SELECT "+sessionColumns+" FROM sessions WHERE key = ? AND expires_at > ?", key, now))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlite: touch session: %w", sessionstore.ErrNotFound)
	case err != nil:
		return fmt.Errorf("sqlite: touch session: %w", unavailable(err))
	}
	sess.LastSeen, sess.ExpiresAt = lastSeen, expiresAt
	rec, err := sessionstore.Encode(sess)
	if err != nil {
		return fmt.Errorf("sqlite: touch session: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		"UPDATE sessions SET expires_at = ?, record = ? WHERE key = ?", ms(expiresAt), rec, key); err != nil {
		return fmt.Errorf("sqlite: touch session: %w", unavailable(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: touch session: %w", unavailable(err))
	}
	return nil
}

// Delete removes the live session under key and leaves tomb for tomb.TTL
// (no tombstone when TTL <= 0; At defaults to now), in one transaction.
func (s *Store) Delete(ctx context.Context, key string, tomb sessionstore.Tombstone) (*sessionstore.Session, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: delete session: %w", err)
	}
	defer tx.Rollback()
	nowT := time.Now()
	now := nowT.UnixMilli()
	var (
		version int64
		rec     []byte
	)
	err = tx.QueryRowContext(ctx,
		"SELECT version, record FROM sessions WHERE key = ? AND expires_at > ?", key, now).Scan(&version, &rec)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("sqlite: delete session: %w", sessionstore.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("sqlite: delete session: %w", unavailable(err))
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE key = ?", key); err != nil {
		return nil, fmt.Errorf("sqlite: delete session: %w", unavailable(err))
	}
	if tomb.TTL > 0 {
		if tomb.At.IsZero() {
			tomb.At = nowT
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO tombstones (key, cause, at, ttl_ms, expires_at) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (key) DO UPDATE SET cause = excluded.cause, at = excluded.at,
			   ttl_ms = excluded.ttl_ms, expires_at = excluded.expires_at`,
			key, string(tomb.Cause), tomb.At.UnixNano(), tomb.TTL.Milliseconds(), ms(nowT.Add(tomb.TTL))); err != nil {
			return nil, fmt.Errorf("sqlite: delete session: tombstone: %w", unavailable(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: delete session: %w", unavailable(err))
	}
	sess, err := sessionstore.Decode(key, version, rec)
	if err != nil {
		return nil, fmt.Errorf("sqlite: delete session: %w", err)
	}
	return sess, nil
}

// Tombstone returns the unexpired tombstone under key.
func (s *Store) Tombstone(ctx context.Context, key string) (sessionstore.Tombstone, error) {
	if s.closed.Load() {
		return sessionstore.Tombstone{}, errClosed
	}
	var (
		cause    string
		at, ttlM int64
	)
	err := s.reader.QueryRowContext(ctx,
		"SELECT cause, at, ttl_ms FROM tombstones WHERE key = ? AND expires_at > ?", key, time.Now().UnixMilli()).
		Scan(&cause, &at, &ttlM)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return sessionstore.Tombstone{}, fmt.Errorf("sqlite: tombstone: %w", sessionstore.ErrNotFound)
	case err != nil:
		return sessionstore.Tombstone{}, fmt.Errorf("sqlite: tombstone: %w", unavailable(err))
	}
	return sessionstore.Tombstone{
		Cause: sessionstore.Cause(cause),
		At:    time.Unix(0, at),
		TTL:   time.Duration(ttlM) * time.Millisecond,
	}, nil
}

func (s *Store) query(ctx context.Context, op, query string, args ...any) ([]*sessionstore.Session, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	rows, err := s.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, unavailable(err))
	}
	defer rows.Close()
	var out []*sessionstore.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", op, unavailable(err))
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, unavailable(err))
	}
	return out, nil
}

// ListBySubject returns the live sessions of subject, newest first, through
// the (subject, created_at) index.
func (s *Store) ListBySubject(ctx context.Context, subject string) ([]*sessionstore.Session, error) {
	if subject == "" {
		return nil, nil
	}
	return s.query(ctx, "list sessions by subject",
		"SELECT "+sessionColumns+" FROM sessions WHERE subject = ? AND expires_at > ? ORDER BY created_at DESC, key",
		subject, time.Now().UnixMilli())
}

// ListByIdPSID returns the live sessions carrying idpSID, newest first.
func (s *Store) ListByIdPSID(ctx context.Context, idpSID string) ([]*sessionstore.Session, error) {
	if idpSID == "" {
		return nil, nil
	}
	return s.query(ctx, "list sessions by IdP sid",
		"SELECT "+sessionColumns+" FROM sessions WHERE idp_sid = ? AND idp_sid <> '' AND expires_at > ? ORDER BY created_at DESC, key",
		idpSID, time.Now().UnixMilli())
}

// List pages through the live sessions in key order; the cursor is the last
// key of the previous page. limit is capped at 1000.
func (s *Store) List(ctx context.Context, cursor string, limit int) ([]*sessionstore.Session, string, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	page, err := s.query(ctx, "list sessions",
		"SELECT "+sessionColumns+" FROM sessions WHERE key > ? AND expires_at > ? ORDER BY key LIMIT ?",
		cursor, time.Now().UnixMilli(), limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(page) > limit {
		page = page[:limit]
		next = page[limit-1].Key
	}
	return page, next, nil
}

// Lock takes the named lock for ttl in one statement: insert it, or take it
// over if the holder's time ran out. Every taking gets a fresh random fence.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (sessionstore.Lock, error) {
	fence := rand.Text()
	now := time.Now()
	res, err := s.exec(ctx,
		`INSERT INTO locks (name, fence, expires_at) VALUES (?, ?, ?)
		 ON CONFLICT (name) DO UPDATE SET fence = excluded.fence, expires_at = excluded.expires_at
		 WHERE locks.expires_at <= ?`,
		name, fence, ms(now.Add(ttl)), ms(now))
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock %q: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock %q: %w", name, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("sqlite: lock %q: %w", name, sessionstore.ErrLocked)
	}
	return &lock{s: s, name: name, fence: fence}, nil
}

type lock struct {
	s     *Store
	name  string
	fence string
}

// Release deletes the lock only if it still carries this lock's fence.
func (l *lock) Release(ctx context.Context) error {
	if _, err := l.s.exec(ctx, "DELETE FROM locks WHERE name = ? AND fence = ?", l.name, l.fence); err != nil {
		return fmt.Errorf("sqlite: release lock %q: %w", l.name, err)
	}
	return nil
}

// Remember records id for ttl; it is first if no unexpired entry existed.
func (s *Store) Remember(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	now := time.Now()
	res, err := s.exec(ctx,
		`INSERT INTO replay (id, expires_at) VALUES (?, ?)
		 ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
		 WHERE replay.expires_at <= ?`,
		id, ms(now.Add(ttl)), ms(now))
	if err != nil {
		return false, fmt.Errorf("sqlite: remember: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: remember: %w", err)
	}
	return n > 0, nil
}
