package redis

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/storetest"
)

// testAddr is the Redis the tests use: BFF_TEST_REDIS or 127.0.0.1:6379.
func testAddr() string {
	if a := os.Getenv("BFF_TEST_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// testClient connects to the test Redis. Without one, the test is skipped
// on a developer machine and fails in CI (CI=true), where a skipped backend
// would look like a passing one.
func testClient(t testing.TB) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: testAddr()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis at %s (set BFF_TEST_REDIS): %v", testAddr(), err)
		}
		t.Skipf("no Redis at %s (set BFF_TEST_REDIS): %v", testAddr(), err)
	}
	return c
}

// newTestStore opens a store on a fresh random prefix, as the BFF does
// (Open, so the store owns its client), and removes its keys when the test
// ends.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	return newTestStoreWithPrefix(t, "bfftest:"+rand.Text()[:12]+":")
}

func newTestStoreWithPrefix(t testing.TB, prefix string) *Store {
	t.Helper()
	c := testClient(t)
	st, err := Open(context.Background(), "redis://"+testAddr()+"/0", Options{Prefix: prefix})
	if err != nil {
		c.Close()
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		st.Close()
		ctx := context.Background()
		for _, k := range prefixKeys(t, c, prefix) {
			c.Del(ctx, k)
		}
		c.Close()
	})
	return st
}

func prefixKeys(t testing.TB, c goredis.UniversalClient, prefix string) []string {
	t.Helper()
	keys, err := c.Keys(context.Background(), globEscape(prefix)+"*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	return keys
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) sessionstore.Store { return newTestStore(t) },
		Peer: func(t *testing.T, s sessionstore.Store) sessionstore.Store {
			peer := NewFromClient(testClient(t), Options{Prefix: s.(*Store).prefix})
			t.Cleanup(func() { peer.Close(); peer.client.Close() })
			return peer
		},
		Dump: dump,
	})
}

// dump returns every key of the store's prefix with its raw value: strings
// as GET returns them, sorted sets as member, score pairs. Not DUMP, whose
// serialization may compress a value and so hide a token in clear from
// the suite's check.
func dump(t *testing.T, s sessionstore.Store) []byte {
	st := s.(*Store)
	ctx := context.Background()
	var out bytes.Buffer
	for _, k := range prefixKeys(t, st.client, st.prefix) {
		out.WriteString(k)
		typ, err := st.client.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", k, err)
		}
		switch typ {
		case "string":
			v, err := st.client.Get(ctx, k).Result()
			if err != nil && !errors.Is(err, goredis.Nil) {
				t.Fatalf("GET %s: %v", k, err)
			}
			out.WriteString(v)
		case "zset":
			zs, err := st.client.ZRangeWithScores(ctx, k, 0, -1).Result()
			if err != nil {
				t.Fatalf("ZRANGE %s: %v", k, err)
			}
			for _, z := range zs {
				fmt.Fprintf(&out, "%s %v\n", z.Member, z.Score)
			}
		case "none": // expired since KEYS
		default:
			t.Fatalf("key %s of unexpected type %s", k, typ)
		}
	}
	return out.Bytes()
}

// newSession returns a live session as the BFF makes it: a key from a
// random cookie value, the handle derived from it.
func newSession(sub string, life time.Duration) *sessionstore.Session {
	now := time.Now()
	key := sessionstore.KeyFromCookie(rand.Text())
	return &sessionstore.Session{
		Key: key, Handle: sessionstore.HandleFromKey(key), Subject: sub, IdPSID: rand.Text(),
		AccessToken: []byte("sealed"), CreatedAt: now, LastSeen: now,
		ExpiresAt: now.Add(life), AbsoluteExpiresAt: now.Add(2 * life),
	}
}

// TestEveryKeyHasTTL checks the rule that no key is ever written without a
// TTL, after every kind of write.
func TestEveryKeyHasTTL(t *testing.T) {
	st := newTestStore(t)
	ctx := context.Background()
	now := time.Now()
	a, b, c := newSession("s1", time.Hour), newSession("s1", time.Minute), newSession("s2", time.Hour)
	for _, s := range []*sessionstore.Session{a, b, c} {
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	b.ExpiresAt = now.Add(3 * time.Hour) // beyond the horizon: raises the index
	if err := st.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := st.Touch(ctx, a.Key, now, now.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Delete(ctx, c.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: now, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lock(ctx, "l", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Remember(ctx, "jti", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ListBySubject(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.client.Exists(ctx, st.subjectKey("s2"), st.sidKey(c.IdPSID)).Result(); n != 0 {
		t.Errorf("the index entries of a deleted session are left (%d sets)", n)
	}
	keys := prefixKeys(t, st.client, st.prefix)
	if len(keys) < 7 {
		t.Fatalf("only %d keys: %v", len(keys), keys)
	}
	for _, k := range keys {
		d, err := st.client.PTTL(ctx, k).Result()
		if err != nil || d <= 0 {
			t.Errorf("key %q: PTTL %v, %v; want a TTL", k, d, err)
		}
	}
	// The index outlives the touched record.
	rec, _ := st.client.PExpireTime(ctx, st.recordKey(a.Handle)).Result()
	for _, k := range []string{st.subjectKey("s1"), st.sidKey(a.IdPSID)} {
		if d, _ := st.client.PExpireTime(ctx, k).Result(); d < rec {
			t.Errorf("%s expires at %v, before its record at %v", k, d, rec)
		}
	}
	if sc, err := st.client.ZScore(ctx, st.subjectKey("s1"), member(a.Handle)).Result(); err != nil || int64(sc) < rec.Milliseconds() {
		t.Errorf("index score %v, %v; want at least the record's expiry %v", sc, err, rec.Milliseconds())
	}
}

// TestCompact checks that the tokens are stored as raw bytes, not base64.
func TestCompact(t *testing.T) {
	st := newTestStore(t)
	ctx := context.Background()
	tok := bytes.Repeat([]byte{0xfe, 0x01}, 1500)
	s := newSession("s", time.Hour)
	s.AccessToken, s.Secrets = tok, tok
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	n, err := st.client.MemoryUsage(ctx, st.recordKey(s.Handle)).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Raw, two tokens take 6 KB plus header, JSON and allocator rounding;
	// base64 would take 8 KB before any of that.
	if n > 2*int64(len(tok))*5/4 {
		t.Errorf("record of two %d-byte tokens takes %d bytes", len(tok), n)
	}
}

func TestOpenUnavailable(t *testing.T) {
	// An address that refuses connections: a port that was free a moment ago.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = Open(ctx, "redis://:secret@"+addr+"/0?dial_timeout=200ms", Options{})
	if !errors.Is(err, sessionstore.ErrUnavailable) {
		t.Fatalf("Open of a closed port: %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error shows the password: %v", err)
	}

	// A store whose server goes away answers ErrUnavailable, not ErrNotFound.
	st := NewFromClient(goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1}), Options{})
	defer st.client.Close()
	if _, err := st.Get(ctx, sessionstore.KeyFromCookie("c")); !errors.Is(err, sessionstore.ErrUnavailable) || errors.Is(err, sessionstore.ErrNotFound) {
		t.Errorf("Get with Redis down: %v, want ErrUnavailable", err)
	}
	if err := st.Ping(ctx); !errors.Is(err, sessionstore.ErrUnavailable) {
		t.Errorf("Ping with Redis down: %v, want ErrUnavailable", err)
	}
}

func TestOpen(t *testing.T) {
	testClient(t).Close()
	st, err := Open(context.Background(), "redis://"+testAddr()+"/0", Options{Prefix: "bfftest:open:"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := st.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := st.Ping(context.Background()); !errors.Is(err, sessionstore.ErrUnavailable) {
		t.Errorf("Ping after Close: %v, want ErrUnavailable", err)
	}
}

func TestParseURL(t *testing.T) {
	type want struct {
		addrs          []string
		user, pass     string
		db             int
		master         string
		cluster, tls   bool
		serverName     string
		sentinelPass   string
		dialTimeout    time.Duration
		clientName     string
		notSimpleCount bool
	}
	ok := []struct {
		url string
		w   want
	}{
		{"redis://localhost", want{addrs: []string{"localhost:6379"}}},
		{"redis://127.0.0.1:6380/2", want{addrs: []string{"127.0.0.1:6380"}, db: 2}},
		{"redis://u:p%40ss@h:1/", want{addrs: []string{"h:1"}, user: "u", pass: "p@ss"}},
		{"redis://:pw@h", want{addrs: []string{"h:6379"}, pass: "pw"}},
		{"redis://[::1]:7000/3", want{addrs: []string{"[::1]:7000"}, db: 3}},
		{"rediss://cache.example:6380/1", want{addrs: []string{"cache.example:6380"}, db: 1, tls: true, serverName: "cache.example"}},
		{"redis://h?dial_timeout=3s&client_name=bff", want{addrs: []string{"h:6379"}, dialTimeout: 3 * time.Second, clientName: "bff"}},
		{"redis+sentinel://s1,s2:26380/mymaster", want{addrs: []string{"s1:26379", "s2:26380"}, master: "mymaster"}},
		{"redis+sentinel://u:p@s1:1,s2:2/mymaster/4?sentinel_password=sp", want{addrs: []string{"s1:1", "s2:2"}, master: "mymaster", db: 4, user: "u", pass: "p", sentinelPass: "sp"}},
		{"rediss+sentinel://s1/m", want{addrs: []string{"s1:26379"}, master: "m", tls: true, serverName: "s1"}},
		{"redis+cluster://n1:7000,n2:7001", want{addrs: []string{"n1:7000", "n2:7001"}, cluster: true}},
		{"redis+cluster://n1:7000", want{addrs: []string{"n1:7000"}, cluster: true}},
		{"rediss+cluster://:pw@n1:7000,n2:7001/", want{addrs: []string{"n1:7000", "n2:7001"}, cluster: true, tls: true, pass: "pw"}},
	}
	for _, c := range ok {
		o, err := ParseURL(c.url)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", c.url, err)
			continue
		}
		w := c.w
		if w.dialTimeout == 0 {
			w.dialTimeout = 2 * time.Second // the store's default
		}
		if o.ReadTimeout != time.Second || o.WriteTimeout != time.Second || !o.ContextTimeoutEnabled {
			t.Errorf("ParseURL(%q): timeouts %v/%v, context deadlines %v; want the short defaults", c.url, o.ReadTimeout, o.WriteTimeout, o.ContextTimeoutEnabled)
		}
		if o.Protocol != 2 {
			t.Errorf("ParseURL(%q): protocol RESP%d, want RESP2 (no push-notification check before every reply)", c.url, o.Protocol)
		}
		if strings.Join(o.Addrs, ",") != strings.Join(w.addrs, ",") || o.Username != w.user || o.Password != w.pass ||
			o.DB != w.db || o.MasterName != w.master || o.IsClusterMode != w.cluster || (o.TLSConfig != nil) != w.tls ||
			o.SentinelPassword != w.sentinelPass || o.DialTimeout != w.dialTimeout || o.ClientName != w.clientName {
			t.Errorf("ParseURL(%q) = %+v, want %+v", c.url, o, w)
		}
		if w.tls && o.TLSConfig.ServerName != w.serverName {
			t.Errorf("ParseURL(%q): TLS ServerName %q, want %q", c.url, o.TLSConfig.ServerName, w.serverName)
		}
	}

	bad := []struct{ url, mention string }{
		{"localhost:6379", "missing scheme"},
		{"http://h", `unsupported scheme "http"`},
		{"unix:///tmp/redis.sock", "unsupported scheme"},
		{"redis://", "missing host"},
		{"redis://:6379", "empty host name"},
		{"redis://h:port", `port "port"`},
		{"redis://h:70000", `port "70000"`},
		{"redis://h1,h2", "needs redis+sentinel:// or redis+cluster://"},
		{"redis://h/x", `database "x"`},
		{"redis://h/-1", `database "-1"`},
		{"redis://h/1/2", "unexpected path"},
		{"redis://h?timeout=3", `unknown query parameter "timeout"`},
		{"redis://h?dial_timeout=3", "dial_timeout"},
		{"redis://h?pool_size=0", "pool_size"},
		{"redis://h?sentinel_password=x", "only for redis+sentinel"},
		{"redis://u:@h", "empty password"},
		{"redis://h#frag", "fragment"},
		{"redis://::1", "IPv6 address must be in brackets"},
		{"redis://[::1", "missing ']'"},
		{"redis+sentinel://s1,s2", "missing master name"},
		{"redis+sentinel://s1/m/x", `database "x"`},
		{"redis+sentinel://s1/m/1/2", "unexpected path"},
		{"redis+cluster://n1/3", "only database 0"},
		{"redis+cluster://n1,,n2", "empty host"},
		{"redis://user:hunter2@h:bad", "xxxxx"},
	}
	for _, c := range bad {
		_, err := ParseURL(c.url)
		if err == nil {
			t.Errorf("ParseURL(%q) succeeded, want an error mentioning %q", c.url, c.mention)
			continue
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("ParseURL(%q) = %v, want it to mention %q", c.url, err, c.mention)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseURL(%q) error shows the password: %v", c.url, err)
		}
	}
}

// TestListCursor checks that a forged cursor is refused.
func TestListCursor(t *testing.T) {
	st := newTestStore(t)
	ctx := context.Background()
	if _, _, err := st.List(ctx, "not base64 json!", 5); !errors.Is(err, sessionstore.ErrInvalid) {
		t.Errorf("List with a forged cursor: %v, want ErrInvalid", err)
	}
}
