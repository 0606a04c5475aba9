package redis

import (
	"context"

	"github.com/bffproxy/bff/sessionstore"
)

var _ sessionstore.SessionCounter = (*Store)(nil)

// CountSessions walks the record keys with SCAN (every primary of a
// Cluster), the same walk as List but without reading the records: Redis
// drops a record when its TTL runs out, so a record key is a live session.
// The count is exact on a quiet keyspace; SCAN may see a key created or
// deleted during the walk, or one twice while Redis rehashes, so under
// churn it is approximate.
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
			n += len(keys)
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return n, nil
}
