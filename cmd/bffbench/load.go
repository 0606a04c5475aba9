package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"time"
)

// loadResult is what one run of the load generator reports.
type loadResult struct {
	Requests int64         `json:"requests"`
	Errors   int64         `json:"errors"`
	Elapsed  time.Duration `json:"elapsed"`
	P50      time.Duration `json:"p50"`
	P99      time.Duration `json:"p99"`
	// FirstError describes the first failed request, if any.
	FirstError string `json:"firstError,omitempty"`
}

func (r loadResult) perSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// loadSpec is one run of the load generator.
type loadSpec struct {
	Addr     string // host:port to connect to
	Path     string
	Cookie   string // a Cookie header value, or ""
	Conns    int
	Duration time.Duration
}

// runLoadProcess runs the load generator as a separate process (this
// binary, "load" mode), pinned to cpu when cpu is not empty, so that its
// work is not counted against the servers it measures.
func runLoadProcess(ctx context.Context, self, cpu string, spec loadSpec) (loadResult, error) {
	args := []string{"load", "-addr", spec.Addr, "-path", spec.Path, "-cookie", spec.Cookie,
		"-conns", strconv.Itoa(spec.Conns), "-duration", spec.Duration.String()}
	var cmd *exec.Cmd
	if cpu != "" {
		cmd = exec.CommandContext(ctx, "taskset", append([]string{"-c", cpu, self}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, self, args...)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return loadResult{}, fmt.Errorf("load generator: %v: %s", err, errOut.String())
	}
	var res loadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return loadResult{}, fmt.Errorf("load generator output %q: %w", out.String(), err)
	}
	return res, nil
}

// runLoadMain is the "load" mode: it keeps spec.Conns keep-alive
// connections busy for spec.Duration and prints a loadResult as JSON.
func runLoadMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	var spec loadSpec
	fs.StringVar(&spec.Addr, "addr", "", "host:port")
	fs.StringVar(&spec.Path, "path", "/api/bench", "request path")
	fs.StringVar(&spec.Cookie, "cookie", "", "Cookie header value")
	fs.IntVar(&spec.Conns, "conns", 64, "connections")
	fs.DurationVar(&spec.Duration, "duration", 5*time.Second, "how long to send requests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res := generateLoad(context.Background(), spec)
	return json.NewEncoder(stdout).Encode(res)
}

// generateLoad is a minimal HTTP/1.1 keep-alive client: a fixed request is
// written and the response read by hand (status line, Content-Length,
// body), so that the generator costs far less per request than the servers
// it drives and stays out of the measurement.
func generateLoad(ctx context.Context, spec loadSpec) loadResult {
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bffbench\r\nAccept: application/json\r\nX-CSRF: 1\r\n", spec.Path, spec.Addr)
	if spec.Cookie != "" {
		fmt.Fprintf(&req, "Cookie: %s\r\n", spec.Cookie)
	}
	req.WriteString("\r\n")
	raw := req.Bytes()

	type connResult struct {
		lat    []time.Duration
		errors int64
		first  string
	}
	results := make([]connResult, spec.Conns)
	start := time.Now()
	deadline := start.Add(spec.Duration)
	var wg sync.WaitGroup
	for i := range spec.Conns {
		wg.Go(func() {
			r := &results[i]
			r.lat = make([]time.Duration, 0, 4096)
			var conn net.Conn
			var br *bufio.Reader
			fail := func(err error) {
				r.errors++
				if r.first == "" {
					r.first = err.Error()
				}
				if conn != nil {
					conn.Close()
					conn = nil
				}
			}
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if conn == nil {
					c, err := net.DialTimeout("tcp", spec.Addr, 5*time.Second)
					if err != nil {
						fail(err)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					conn, br = c, bufio.NewReaderSize(c, 8192)
				}
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				t0 := time.Now()
				if _, err := conn.Write(raw); err != nil {
					fail(err)
					continue
				}
				status, err := readResponse(br)
				if err != nil {
					fail(err)
					continue
				}
				if status != 200 {
					fail(fmt.Errorf("status %d", status))
					continue
				}
				r.lat = append(r.lat, time.Since(t0))
			}
			if conn != nil {
				conn.Close()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	var res loadResult
	for _, r := range results {
		all = append(all, r.lat...)
		res.Errors += r.errors
		if res.FirstError == "" {
			res.FirstError = r.first
		}
	}
	slices.Sort(all)
	res.Requests, res.Elapsed = int64(len(all)), elapsed
	res.P50, res.P99 = percentile(all, 0.50), percentile(all, 0.99)
	return res
}

// readResponse reads one response with a Content-Length body and returns
// its status. Chunked responses are not expected from the bench upstream.
func readResponse(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 15 && (line[0] == 'C' || line[0] == 'c') && bytes.EqualFold(line[:15], []byte("Content-Length:")) {
			length, err = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
			if err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", line)
			}
		}
	}
	if length < 0 {
		return 0, errors.New("response without Content-Length")
	}
	if _, err := br.Discard(length); err != nil {
		return 0, err
	}
	return status, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

// selfPath is the running binary, re-executed for load mode.
func selfPath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own binary: %w", err)
	}
	return p, nil
}
