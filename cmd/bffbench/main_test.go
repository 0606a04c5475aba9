package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary stand in for bffbench in its load,
// upstream and bare modes, which the bench starts by re-executing itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "load":
			if err := runLoadMain(os.Args[2:], os.Stdout); err != nil {
				os.Exit(1)
			}
			os.Exit(0)
		case "upstream", "bare":
			if err := runServerMain(os.Args[1], os.Args[2:]); err != nil {
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

// A short run against the memory store completes and prints the table
// with a row for the bare proxy and one for the BFF, each with a rate.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bff binary and runs it under load")
	}
	var out bytes.Buffer
	args := []string{"-stores", "memory", "-rounds", "1", "-duration", "300ms", "-warmup", "200ms", "-conns", "4", "-pin=false", "-gate=false"}
	if err := run(context.Background(), args, func(string) string { return "" }, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"setup: ", "req/s", "bare proxy", "bff memory"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 2 && (f[0] == "bare" || f[0] == "bff") && f[2] == "0" {
			t.Errorf("a target served no requests: %q", line)
		}
	}
}
