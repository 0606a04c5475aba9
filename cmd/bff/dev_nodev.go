//go:build nodev

package main

import (
	"context"
	"errors"
	"io"
)

// runDev is absent from release builds (-tags nodev): the embedded IdP and
// demo API, and their dependencies, stay out of the production binary.
func runDev(context.Context, []string, func(string) string, io.Writer, io.Writer) error {
	return errors.New("dev mode is not part of this build; build without -tags nodev, or use `go run ./cmd/bff dev`")
}
