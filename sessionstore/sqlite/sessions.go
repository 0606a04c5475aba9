package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

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
