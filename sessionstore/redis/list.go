package redis

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bffproxy/bff/sessionstore"
)

const (
	defaultListLimit = 100
	// scanCount bounds the COUNT hint of one SCAN, and with it the work of
	// one round trip and the surplus keys a cursor may carry.
	minScanCount, maxScanCount = 10, 1000
)

// listCursor is the state of a List walk, handed to the caller as opaque
// base64 JSON.
type listCursor struct {
	Node    int      `json:"n,omitempty"` // index of the primary being scanned (Cluster)
	Scan    uint64   `json:"c,omitempty"` // its SCAN cursor
	Done    bool     `json:"d,omitempty"` // its SCAN has finished
	Pending []string `json:"h,omitempty"` // handles scanned but not yet returned
}

// List pages through all live sessions with SCAN; see the package comment
// for its guarantees. A page holds at most limit sessions.
func (st *Store) List(ctx context.Context, cursor string, limit int) ([]*sessionstore.Session, string, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	var cur listCursor
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err == nil {
			err = json.Unmarshal(b, &cur)
		}
		if err != nil || cur.Node < 0 {
			return nil, "", fmt.Errorf("redis: list: %w: malformed cursor", sessionstore.ErrInvalid)
		}
	}
	nodes, err := st.scanNodes(ctx)
	if err != nil {
		return nil, "", st.fail("list", err)
	}
	count := int64(min(max(limit, minScanCount), maxScanCount))
	pattern := st.recordPattern()
	seen := make(map[string]bool, len(cur.Pending))
	for _, k := range cur.Pending {
		seen[k] = true
	}

	var page []*sessionstore.Session
	for len(page) < limit {
		if len(cur.Pending) > 0 {
			n := min(limit-len(page), len(cur.Pending))
			got, err := st.fetchLive(ctx, cur.Pending[:n])
			if err != nil {
				return nil, "", st.fail("list", err)
			}
			page = append(page, got...)
			cur.Pending = cur.Pending[n:]
			continue
		}
		if cur.Done {
			cur.Node, cur.Scan, cur.Done = cur.Node+1, 0, false
		}
		if cur.Node >= len(nodes) {
			return page, "", nil
		}
		keys, next, err := nodes[cur.Node].ScanType(ctx, cur.Scan, pattern, count, "string").Result()
		if err != nil {
			return nil, "", st.fail("list", err)
		}
		cur.Scan, cur.Done = next, next == 0
		for _, rk := range keys {
			h, ok := strings.CutPrefix(rk, st.prefix+"{h:")
			h, ok2 := strings.CutSuffix(h, "}")
			if ok && ok2 && !seen[h] {
				seen[h] = true
				cur.Pending = append(cur.Pending, h)
			}
		}
	}
	if len(cur.Pending) == 0 && cur.Done && cur.Node+1 >= len(nodes) {
		return page, "", nil
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return nil, "", fmt.Errorf("redis: list: %w", err)
	}
	return page, base64.RawURLEncoding.EncodeToString(b), nil
}

// fetchLive reads the records under handles in one round trip and
// returns the live ones, in that order.
func (st *Store) fetchLive(ctx context.Context, handles []string) ([]*sessionstore.Session, error) {
	recs, err := st.fetch(ctx, handles)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]*sessionstore.Session, 0, len(handles))
	for i, b := range recs {
		s, err := underHandle(handles[i], b)
		if err != nil {
			return nil, err
		}
		if s != nil && s.Live(now) {
			out = append(out, s)
		}
	}
	return out, nil
}

// fetch reads the records under handles in one round trip (one per node
// in a Cluster); a missing record is nil.
func (st *Store) fetch(ctx context.Context, handles []string) ([][]byte, error) {
	cmds := make([]*goredis.StringCmd, len(handles))
	_, err := st.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, h := range handles {
			cmds[i] = p.Get(ctx, st.recordKey(h))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	out := make([][]byte, len(handles))
	for i, c := range cmds {
		b, err := c.Bytes()
		switch {
		case errors.Is(err, goredis.Nil):
		case err != nil:
			return nil, err
		default:
			out[i] = b
		}
	}
	return out, nil
}

// scanner is what List needs of a node.
type scanner interface {
	ScanType(ctx context.Context, cursor uint64, match string, count int64, keyType string) *goredis.ScanCmd
}

// scanNodes returns the nodes a full walk must SCAN: the primaries of a
// Cluster in address order, else the client itself (for Sentinel, the
// client follows the current primary).
func (st *Store) scanNodes(ctx context.Context) ([]scanner, error) {
	cc, ok := st.client.(*goredis.ClusterClient)
	if !ok {
		return []scanner{st.client}, nil
	}
	type node struct {
		addr string
		c    *goredis.Client
	}
	var mu sync.Mutex
	var nodes []node
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		mu.Lock()
		nodes = append(nodes, node{c.Options().Addr, c})
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(nodes, func(a, b node) int { return strings.Compare(a.addr, b.addr) })
	out := make([]scanner, len(nodes))
	for i, n := range nodes {
		out[i] = n.c
	}
	return out, nil
}
