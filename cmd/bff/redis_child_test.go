package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bffproxy/bff/internal/syncbuf"
	goredis "github.com/redis/go-redis/v9"
)

// sharedRedisURL returns the URL of the shared test Redis (BFF_TEST_REDIS
// or 127.0.0.1:6379), database 5, emptied once per test run. The redis store
// takes no key prefix in its URL, so the process tests own a database of
// their own. Without Redis the test is skipped, or fails when CI=true.
func sharedRedisURL(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("process test: runs real bff processes")
	}
	addr := os.Getenv("BFF_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	const db = 5
	c := goredis.NewClient(&goredis.Options{Addr: addr, DB: db, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis at %s (set BFF_TEST_REDIS): %v", addr, err)
		}
		t.Skipf("no Redis at %s (set BFF_TEST_REDIS): %v", addr, err)
	}
	procFlushOnce.Do(func() { procFlushErr = c.FlushDB(ctx).Err() })
	if procFlushErr != nil {
		t.Fatalf("FLUSHDB on %s/%d: %v", addr, db, procFlushErr)
	}
	return "redis://" + addr + "/" + strconv.Itoa(db)
}

// redisServer is a redis-server child process of the test.
type redisChild struct {
	addr string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
}

// startRedisChild runs a dedicated, non-persistent redis-server on a free
// port.
func startRedisChild(t *testing.T) *redisChild {
	t.Helper()
	if testing.Short() {
		t.Skip("process test: runs real bff processes")
	}
	bin := redisServerPath(t)
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	rs := &redisChild{addr: addr, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	rs.cmd = exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	rs.cmd.Stdout, rs.cmd.Stderr = rs.out, rs.out
	if err := rs.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = rs.cmd.Wait(); close(rs.done) }()
	t.Cleanup(func() {
		_ = rs.cmd.Process.Signal(syscall.SIGCONT)
		rs.kill()
		if t.Failed() {
			t.Logf("redis-server output:\n%s", rs.out.String())
		}
	})
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s not answering: %v\n%s", addr, err, rs.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (rs *redisChild) kill() {
	select {
	case <-rs.done:
		return
	default:
	}
	_ = rs.cmd.Process.Kill()
	<-rs.done
}

// signal sends sig (SIGSTOP, SIGCONT) to redis-server.
func (rs *redisChild) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := rs.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to redis-server: %v", sig, err)
	}
}

// redisServerPath finds the redis-server binary. Without it the test is
// skipped, or fails when CI=true.
func redisServerPath(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no redis-server: %v", err)
		}
		t.Skipf("no redis-server: %v", err)
	}
	return bin
}
