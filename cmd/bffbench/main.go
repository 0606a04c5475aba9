// Command bffbench measures the BFF against a bare reverse proxy, in one
// run, on this machine:
//
//	go run ./cmd/bffbench                      # throughput table, every store
//	go run ./cmd/bffbench -scenario storm      # refresh storm over two instances
//	go run ./cmd/bffbench -scenario all        # everything (about 5 minutes)
//
// It starts a 1 KB JSON upstream, a bare httputil.ReverseProxy with the
// BFF's transport settings, the embedded OP and the real `bff serve`
// binary (built by this command) with each store, signs a user in for a
// real cookie, and drives load from a separate process pinned to another
// core than the servers (taskset). Rounds are interleaved after a warm-up
// and every ratio compares targets of the same round. It exits non-zero
// when a target is missed, so it can gate a release. See BENCHMARKS.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "load" {
		if err := runLoadMain(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bffbench load:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && (os.Args[1] == "upstream" || os.Args[1] == "bare") {
		if err := runServerMain(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bffbench "+os.Args[1]+":", err)
			os.Exit(1)
		}
		return
	}
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errMissed):
		fmt.Fprintln(os.Stderr, "bffbench:", err)
		os.Exit(3)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bffbench:", err)
		os.Exit(1)
	}
}

// errMissed: the run completed and a target was missed.
var errMissed = errors.New("a target was missed")

// options are the command's flags.
type options struct {
	scenarios []string
	stores    []string
	redisURL  string
	conns     int
	duration  time.Duration
	warmup    time.Duration
	rounds    int
	pin       bool
	gate      bool
	// tokenDelay slows the OP's token endpoint in the storm scenario.
	tokenDelay time.Duration

	// Set up by run: the CPUs of the servers and of the load generator
	// ("" when not pinned).
	serverCPU, loadCPU string
	self               string
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bffbench", flag.ContinueOnError)
	scenario := fs.String("scenario", "throughput", "comma-separated: throughput, storm, kill, killuser, redismem, login, ahead, or all")
	stores := fs.String("stores", "memory,sqlite,redis", "stores measured by the throughput scenario")
	defRedis := getenv("BFF_BENCH_REDIS")
	if defRedis == "" && getenv("BFF_TEST_REDIS") != "" {
		defRedis = "redis://" + getenv("BFF_TEST_REDIS") + "/0"
	}
	if defRedis == "" {
		defRedis = "redis://127.0.0.1:6379/0"
	}
	var o options
	fs.StringVar(&o.redisURL, "redis", defRedis, "Redis for the Redis store and the cluster scenarios (env BFF_BENCH_REDIS, or BFF_TEST_REDIS as host:port)")
	fs.IntVar(&o.conns, "conns", 64, "concurrent connections of the load generator")
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "length of one measured round per target")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up per target before the rounds")
	fs.IntVar(&o.rounds, "rounds", 12, "interleaved rounds")
	fs.BoolVar(&o.pin, "pin", true, "pin servers and load generator to different cores with taskset")
	fs.DurationVar(&o.tokenDelay, "token-delay", 200*time.Millisecond, "delay of the OP's token endpoint in the storm scenario")
	fs.BoolVar(&o.gate, "gate", true, "exit with status 3 when a target is missed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.scenarios = strings.Split(*scenario, ",")
	if *scenario == "all" {
		o.scenarios = []string{"throughput", "storm", "kill", "killuser", "redismem", "login", "ahead"}
	}
	o.stores = strings.Split(*stores, ",")
	self, err := selfPath()
	if err != nil {
		return err
	}
	o.self = self
	if o.pin {
		o.serverCPU, o.loadCPU = pinSelf()
	}

	st, err := newStack(ctx)
	if err != nil {
		return err
	}
	st.self = self
	defer os.RemoveAll(st.dir)
	defer st.close()
	fmt.Fprintf(stdout, "setup: %s\n\n", o.setup())

	missed := false
	for _, sc := range o.scenarios {
		var ok bool
		var err error
		switch sc {
		case "throughput":
			ok, err = throughput(ctx, st, &o, stdout)
		case "storm":
			ok, err = refreshStorm(ctx, st, &o, stdout)
		case "kill":
			ok, err = killLatency(ctx, st, &o, stdout)
		case "killuser":
			ok, err = killUserCost(ctx, st, &o, stdout)
		case "redismem":
			ok, err = redisMemory(ctx, st, &o, stdout)
		case "login":
			ok, err = loginThroughput(ctx, st, &o, stdout)
		case "ahead":
			ok, err = refreshAhead(ctx, st, &o, stdout)
		default:
			return fmt.Errorf("unknown scenario %q", sc)
		}
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc, err)
		}
		missed = missed || !ok
		fmt.Fprintln(stdout)
	}
	if missed && o.gate {
		return errMissed
	}
	return nil
}

// pinSelf pins this process (the upstream, the bare proxy, the OP and, by
// inheritance, every BFF process it starts) to CPU 0 and leaves CPU 1 to
// the load generator. Without taskset or a second core nothing is pinned.
func pinSelf() (serverCPU, loadCPU string) {
	if runtime.NumCPU() < 2 {
		return "", ""
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return "", ""
	}
	if err := exec.Command("taskset", "-a", "-cp", "0", strconv.Itoa(os.Getpid())).Run(); err != nil {
		return "", ""
	}
	runtime.GOMAXPROCS(1)
	return "0", "1"
}

func (o *options) setup() string {
	pin := "not pinned"
	if o.serverCPU != "" {
		pin = fmt.Sprintf("servers on CPU %s, load generator on CPU %s (taskset)", o.serverCPU, o.loadCPU)
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%d cores (%s), %s, %s; %d connections, %d rounds × %v after %v warm-up per target; 1 KB JSON upstream; Go %s",
		runtime.NumCPU(), host, runtime.GOOS+"/"+runtime.GOARCH, pin, o.conns, o.rounds, o.duration, o.warmup, runtime.Version())
}
