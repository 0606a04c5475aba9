package redis

import (
	"context"
	"strings"

	"github.com/bffproxy/bff/sessionstore"
)

var _ sessionstore.SessionCounter = (*Store)(nil)

// maxPointerSize is the longest a handle pointer can be (a session key as
// 43 characters of text, as earlier versions wrote it; packed it is 32
// bytes). A record is always longer: a header and the 32 bytes of its key
// come before the session itself.
const maxPointerSize = 43

// CountSessions walks the record keys with SCAN (every primary of a
// Cluster), the same walk as List but without reading the records: Redis
// drops a record when its TTL runs out, so a record key is a live session.
// Tombstones are skipped by name; under P{h:…}, handle pointers (sessions
// whose handle is not derived from their key, which the BFF does not make)
// are told apart from records by their length. The count is exact on a
// quiet keyspace; SCAN may see a key created or deleted during the walk,
// or one twice while Redis rehashes, so under churn it is approximate.
func (st *Store) CountSessions(ctx context.Context) (int, error) {
	nodes, err := st.scanNodes(ctx)
	if err != nil {
		return 0, st.fail("count sessions", err)
	}
	n := 0
	for _, node := range nodes {
		var cursor uint64
		for {
			keys, next, err := node.ScanType(ctx, cursor, st.recordPattern(), maxScanCount, "string").Result()
			if err != nil {
				return 0, st.fail("count sessions", err)
			}
			var byHandle []string
			for _, k := range keys {
				switch {
				case strings.HasSuffix(k, ":t"):
				case strings.HasPrefix(k[len(st.prefix):], "{h:"):
					byHandle = append(byHandle, k)
				default:
					n++
				}
			}
			records, err := st.countRecords(ctx, byHandle)
			if err != nil {
				return 0, st.fail("count sessions", err)
			}
			n += records
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return n, nil
}

// countRecords counts the keys that hold a record rather than a handle
// pointer, with one pipelined STRLEN each.
func (st *Store) countRecords(ctx context.Context, keys []string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	pipe := st.client.Pipeline()
	lens := make([]interface{ Val() int64 }, len(keys))
	for i, k := range keys {
		lens[i] = pipe.StrLen(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	n := 0
	for _, l := range lens {
		if l.Val() > maxPointerSize {
			n++
		}
	}
	return n, nil
}
