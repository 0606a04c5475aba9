package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/internal/syncbuf"
	goredis "github.com/redis/go-redis/v9"
)

// A store URL's credentials never reach the start-up log or an error,
// whatever their form: userinfo (also with an unescaped "/"), password and
// sentinel_password parameters, anything named like a secret.
func TestStoreURLCredentialsNeverPrinted(t *testing.T) {
	redisAddr := strings.TrimPrefix(strings.TrimSuffix(sharedRedisURL(t), "/5"), "redis://")
	sentinel := startSentinel(t, redisAddr, "s3ntinel-SECRET-A")

	cases := []struct {
		url    string
		secret string
		opens  bool
	}{
		{"redis://default:pa/ss-SECRET-B@" + redisAddr + "/0", "SECRET-B", false},
		{"redis://" + redisAddr + "/0?password=SECRET-C", "SECRET-C", false},
		{"redis://default:SECRET-D@" + redisAddr + "/0", "SECRET-D", true},
		{"redis+sentinel://" + sentinel + "/mymaster/0?sentinel_password=s3ntinel-SECRET-A", "SECRET-A", true},
		{"redis://127.0.0.1:1/0?sentinel_password=SECRET-E", "SECRET-E", false},
		{"rediss://u:SECRET-F@127.0.0.1:1/0?dial_timeout=200ms", "SECRET-F", false},
		{"redis://u:SECRET-G/x?y#z@127.0.0.1:1/0", "SECRET-G", false},
		{"redis://127.0.0.1:1/0?client_name=a&api_token=SECRET-H", "SECRET-H", false},
		{"rediz://127.0.0.1:1/0?Password=SECRET-I", "SECRET-I", false},
		{"redis://:SECRET-J@127.0.0.1:1/0?dial_timeout=200ms", "SECRET-J", false},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, desc, err := openStore(ctx, c.url, t.TempDir())
		cancel()
		if st != nil {
			st.Close()
		}
		if c.opens && err != nil {
			t.Errorf("open %s: %v", c.secret, err)
		}
		if !c.opens && err == nil {
			t.Errorf("open %s: no error", c.secret)
		}
		if strings.Contains(desc, c.secret) || (err != nil && strings.Contains(err.Error(), c.secret)) {
			t.Errorf("%s printed: description %q, error %v", c.secret, desc, err)
		}
	}
}

// startSentinel runs a Redis Sentinel that watches the Redis at master
// (as "mymaster") and requires password.
func startSentinel(t *testing.T, master, password string) string {
	t.Helper()
	bin := redisServerPath(t)
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	mhost, mport, _ := net.SplitHostPort(master)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := "port " + port + "\nbind " + host + "\nrequirepass " + password + "\nsentinel monitor mymaster " + mhost + " " + mport + " 1\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &syncbuf.Buffer{}
	cmd := exec.Command(bin, conf, "--sentinel", "--dir", dir)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := goredis.NewSentinelClient(&goredis.Options{Addr: addr, Password: password, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.GetMasterAddrByName(ctx, "mymaster").Result()
		cancel()
		if err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel on %s not answering: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
