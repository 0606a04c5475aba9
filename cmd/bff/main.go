// Command bff is the Backend-for-Frontend session proxy.
//
//	bff serve     run in production (configuration from flags and BFF_* variables)
//	bff dev       run the whole demo: IdP, demo API, SPA and BFF, no setup
//	bff admin     talk to a running BFF's admin API
//	bff healthcheck  exit 0 when this instance's admin /healthz answers 200, else 1
//	bff keygen    print a new key for BFF_KEYS
//	bff version   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bff:", err)
		}
		os.Exit(exitCode(err))
	}
}

// run is the whole program; tests call it with their own arguments,
// environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "dev":
		return runDev(ctx, rest, getenv, stdout, stderr)
	case "admin":
		return runAdmin(ctx, rest, getenv, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, rest, getenv, stdout, stderr)
	case "keygen":
		return runKeygen(stdout)
	case "version":
		fmt.Fprintln(stdout, "bff", version)
		return nil
	case "help", "-h", "--help":
		usage(stdout)
		return nil
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", cmd)
}

var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: bff <command> [flags]

Commands:
  serve     run the BFF (see bff serve --help for every setting)
  dev       run the whole demo on http://127.0.0.1:8080 with no setup
  admin     list and kill sessions through the admin API (bff admin --help)
  healthcheck
            exit 0 if this instance (same configuration as serve) is alive, else 1
  keygen    print a new random key for BFF_KEYS
  version   print the version
`)
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}
