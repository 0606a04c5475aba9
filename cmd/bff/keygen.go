package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/bffproxy/bff/sessionstore"
)

// runKeygen prints a new key for BFF_KEYS. To rotate, put the new key first
// and keep the old one after it until the sessions it sealed have expired.
func runKeygen(stdout io.Writer) error {
	fmt.Fprintln(stdout, newKey())
	return nil
}

func newKey() string {
	k := make([]byte, sessionstore.KeySize)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}
