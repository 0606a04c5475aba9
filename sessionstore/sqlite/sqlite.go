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
// served by one BFF process, so there is no other instance to tell. Open
// refuses a file that another process holds (see claimFile).
package sqlite

import (
	"context"
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
	"github.com/bffproxy/bff/sessionstore/internal/purge"
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

	release   func() error // gives up the claim on the file (see claimFile)
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	purger    *purge.Loop
}

var _ sessionstore.Store = (*Store)(nil)

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
	release, err := claimFile(path)
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, path, opts)
	if err != nil {
		release()
		return nil, err
	}
	s.release = release
	return s, nil
}

// open is Open once the file is this process's.
func open(ctx context.Context, path string, opts Options) (*Store, error) {

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
	// One process serves a database file (claimFile), so any lock found at
	// start-up was held by a process that died (a crash mid-refresh); honouring it would
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
	}
	// A failed purge is retried at the next tick; queries ignore expired
	// rows meanwhile.
	s.purger = purge.Start(opts.PurgeInterval, func(time.Time) { _ = s.purge(context.Background()) })
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
		s.purger.Stop()
		s.closeErr = errors.Join(s.reader.Close(), s.writer.Close(), s.release())
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
