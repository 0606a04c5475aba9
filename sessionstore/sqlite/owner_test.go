package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// A database file is served by one process: the BFF caches its records and
// clears its refresh locks at start-up on that promise, so a second BFF on
// the same file would keep serving sessions the first had killed. Opening
// a file that another store holds open is refused, naming the way out; once
// the first store is closed the file opens again.
func TestSecondOpenOfTheSameFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	first, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Open(context.Background(), path, Options{})
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second store opened a database file that another store holds")
	}
	if !strings.Contains(err.Error(), "another process") || !strings.Contains(err.Error(), "redis") {
		t.Errorf("error %q should say that another process holds the file and point to redis", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("open after the first store closed: %v", err)
	}
	again.Close()
}
