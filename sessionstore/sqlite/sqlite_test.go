package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/storetest"
)

func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, Options{PurgeInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t *testing.T) sessionstore.Store {
	return openAt(t, filepath.Join(t.TempDir(), "sessions.db"))
}

// dump returns the raw bytes of the database file and its companions after
// a checkpoint, followed by every row of every table.
func dump(t *testing.T, st sessionstore.Store) []byte {
	s := st.(*Store)
	ctx := context.Background()
	var b bytes.Buffer
	tables := []string{"sessions", "tombstones", "locks", "replay"}
	for _, table := range tables {
		rows, err := s.writer.QueryContext(ctx, "SELECT * FROM "+table)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					b.Write(bs)
				} else {
					fmt.Fprint(&b, v)
				}
				b.WriteByte('\t')
			}
			b.WriteByte('\n')
		}
		rows.Close()
	}
	// Read the WAL before the checkpoint empties it, and the file after.
	for _, p := range []string{s.path + "-wal", s.path + "-shm"} {
		raw, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		b.Write(raw)
	}
	if _, err := s.writer.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	raw, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	b.Write(raw)
	return b.Bytes()
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{New: newStore, Dump: dump})
}

// key is the key of the session named name.
func key(name string) string { return sessionstore.KeyFromCookie("cookie of " + name) }

func testSession(name string) *sessionstore.Session {
	now := time.Now()
	return &sessionstore.Session{
		Key: key(name), Handle: sessionstore.HandleFromKey(key(name)), Subject: "alice", IdPSID: "sid-1",
		Claims:    map[string]string{"name": "Alice"},
		CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour),
	}
}

// TestRestart checks the reason this backend exists: sessions, tombstones,
// locks and replay entries survive closing and reopening the file.
func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	ctx := context.Background()
	s1, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sess := testSession("k1")
	if err := s1.Create(ctx, sess); err != nil {
		t.Fatal(err)
	}
	sess.Scope = "openid"
	if err := s1.Update(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s1.Create(ctx, testSession("k2")); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Delete(ctx, key("k2"), sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Remember(ctx, "jti", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openAt(t, path)
	got, err := s2.Get(ctx, key("k1"))
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	if got.Version != 2 || got.Scope != "openid" || got.Claims["name"] != "Alice" {
		t.Errorf("after reopen: %+v", got)
	}
	if tb, err := s2.Tombstone(ctx, key("k2")); err != nil || tb.Cause != sessionstore.CauseAdmin {
		t.Errorf("Tombstone after reopen = %+v, %v", tb, err)
	}
	if first, err := s2.Remember(ctx, "jti", time.Hour); err != nil || first {
		t.Errorf("Remember after reopen = %v, %v; want false", first, err)
	}
}

// TestFileMode checks that the database and its WAL companions are private.
func TestFileMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sessions.db")
	s := openAt(t, path)
	ctx := context.Background()
	if err := s.Create(ctx, testSession("k")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) && p != path {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), m)
		}
	}

	// An existing file that is too open is tightened.
	loose := filepath.Join(dir, "loose.db")
	if err := os.WriteFile(loose, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	openAt(t, loose)
	if fi, err := os.Stat(loose); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("existing file mode after Open = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

func userVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMigrate checks that an empty file is migrated to the current schema,
// that reopening at the current version changes nothing, and that a file
// from a newer version is refused.
func TestMigrate(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	path := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open of an empty file: %v", err)
	}
	if err := s.Create(ctx, testSession("k")); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := s.reader.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	s.Close()
	if v := userVersion(t, path); v != schemaVersion() {
		t.Errorf("user_version = %d, want %d", v, schemaVersion())
	}

	s = openAt(t, path)
	if _, err := s.Get(ctx, key("k")); err != nil {
		t.Errorf("Get after reopen at the current version: %v", err)
	}
	s.Close()
	if v := userVersion(t, path); v != schemaVersion() {
		t.Errorf("user_version after reopen = %d, want %d", v, schemaVersion())
	}

	// A file that does not exist yet works as well.
	openAt(t, filepath.Join(dir, "new.db"))

	// A newer schema is refused, not guessed at.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion()+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(ctx, path, Options{}); err == nil {
		s.Close()
		t.Error("Open of a newer schema succeeded")
	}
}

// TestPurge checks that expired rows are deleted from the file, not only
// hidden by the queries.
func TestPurge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := Open(context.Background(), path, Options{PurgeInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	sess := testSession("k")
	sess.ExpiresAt = time.Now().Add(30 * time.Millisecond)
	if err := s.Create(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remember(ctx, "jti", 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(ctx, "l", 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		var n int
		err := s.reader.QueryRow(`SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM replay) +
			(SELECT count(*) FROM locks) + (SELECT count(*) FROM tombstones)`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d expired rows still in the file", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpenRejectsNonPaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if s, err := Open(context.Background(), p, Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}
