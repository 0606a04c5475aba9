package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

var errAdminOff = errors.New("BFF_ADMIN_LISTEN is off: the health check asks the admin listener's /healthz")

// healthcheckTimeout bounds the whole check; an instance that cannot answer
// /healthz in this time is not healthy.
const healthcheckTimeout = 5 * time.Second

// runHealthcheck asks this instance's admin listener for /healthz and
// returns nil (exit 0) only for a 200. It reads the same configuration as
// serve, so a container's HEALTHCHECK needs no arguments and no shell:
// distroless images have neither curl nor sh.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("healthcheck", args, getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.AdminListen == "off" {
		return errAdminOff
	}
	target, err := healthURL(cfg.AdminListen, cfg.AdminTLSCert != "")
	if err != nil {
		return fmt.Errorf("BFF_ADMIN_LISTEN: %w", err)
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	if cfg.AdminTLSCert != "" {
		if tr.TLSClientConfig, err = pinnedTLS(cfg.AdminTLSCert); err != nil {
			return fmt.Errorf("BFF_ADMIN_TLS_CERT: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s answered %s", target, resp.Status)
	}
	fmt.Fprintln(stdout, "healthy:", target)
	return nil
}

// healthURL is the admin listener's /healthz as this host reaches it: an
// unspecified listen address (0.0.0.0, ::, empty) is asked on loopback.
func healthURL(listen string, useTLS bool) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz", nil
}

// pinnedTLS accepts exactly the certificate in the admin listener's own
// certificate file. The check asks this instance, whatever CA signed its
// certificate and whatever names it carries; any other server fails it.
func pinnedTLS(certPath string) (*tls.Config, error) {
	raw, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate in the file")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return nil, err
	}
	want := block.Bytes
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verification is the pin below, not a CA chain and a host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
				return errors.New("the admin listener's certificate is not the one in BFF_ADMIN_TLS_CERT")
			}
			return nil
		},
	}, nil
}
