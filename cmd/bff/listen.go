package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// listener is one of the BFF's HTTP servers (public or admin) with its
// socket, serving TLS when it has a certificate.
type listener struct {
	name  string // "public" or "admin", for logs
	srv   *http.Server
	ln    net.Listener
	certs *certFiles // nil: plain http
}

// listen opens addr for h. With certPath and keyPath it serves TLS from
// those files. addrSetting and certSetting name the variables in errors.
func listen(logger *slog.Logger, name, addr, addrSetting, certSetting, certPath, keyPath string, h http.Handler) (*listener, error) {
	l := &listener{name: name, srv: newHTTPServer(h, logger)}
	if certPath != "" {
		certs, err := loadCertFiles(logger, certSetting, certPath, keyPath)
		if err != nil {
			return nil, err
		}
		l.certs = certs
		l.srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: certs.getCertificate,
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addrSetting, err)
	}
	l.ln = ln
	return l, nil
}

// url is the listener's base URL, for logs.
func (l *listener) url() string {
	if l.certs != nil {
		return "https://" + l.ln.Addr().String()
	}
	return "http://" + l.ln.Addr().String()
}

// serve blocks until the server is shut down. ServeTLS turns on HTTP/2
// (ALPN h2) next to HTTP/1.1.
func (l *listener) serve() error {
	if l.certs != nil {
		return l.srv.ServeTLS(l.ln, "", "")
	}
	return l.srv.Serve(l.ln)
}

// shutdownAll stops every listener at once: no new connections, idle ones
// closed, requests in flight given until timeout, then cut.
func shutdownAll(logger *slog.Logger, timeout time.Duration, listeners []*listener) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Go(func() {
			if err := l.srv.Shutdown(ctx); err != nil {
				logger.Warn("requests still in flight at the shutdown timeout were cut",
					slog.String("listener", l.name), slog.Duration("timeout", timeout))
				_ = l.srv.Close()
			}
		})
	}
	wg.Wait()
}

// certCheckInterval is how often, at most, the certificate files are
// checked for a change (on a TLS handshake).
const certCheckInterval = time.Second

// certFiles serves a certificate from PEM files and loads them again when
// they change, so a renewed certificate (cert-manager, certbot, an updated
// Kubernetes secret) is used without a restart. A change that cannot be
// loaded — files caught half-written, a key that does not match — keeps the
// certificate in use, is logged, and is tried again at the next check.
type certFiles struct {
	logger                     *slog.Logger
	setting, certPath, keyPath string

	mu       sync.Mutex
	cert     *tls.Certificate
	stamp    string // what the files looked like when cert was loaded
	checked  time.Time
	failures string // the last reload failure logged, so it is logged once
}

func loadCertFiles(logger *slog.Logger, setting, certPath, keyPath string) (*certFiles, error) {
	c := &certFiles{logger: logger, setting: setting, certPath: certPath, keyPath: keyPath}
	stamp, err := c.fileStamp()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	c.cert, c.stamp, c.checked = &cert, stamp, time.Now()
	return c, nil
}

// fileStamp sums up both files' size and modification time. Following
// symlinks, it also sees a Kubernetes secret volume's atomic swap.
func (c *certFiles) fileStamp() (string, error) {
	var b bytes.Buffer
	for _, p := range []string{c.certPath, c.keyPath} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

func (c *certFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < certCheckInterval {
		return c.cert, nil
	}
	c.checked = time.Now()
	stamp, err := c.fileStamp()
	if err == nil && stamp == c.stamp {
		return c.cert, nil
	}
	if err == nil {
		var cert tls.Certificate
		if cert, err = tls.LoadX509KeyPair(c.certPath, c.keyPath); err == nil {
			c.cert, c.stamp, c.failures = &cert, stamp, ""
			c.logger.Info("TLS certificate reloaded", slog.String("setting", c.setting))
			return c.cert, nil
		}
	}
	if msg := err.Error(); msg != c.failures {
		c.failures = msg
		c.logger.Warn("TLS certificate files changed but cannot be loaded; keeping the current certificate",
			slog.String("setting", c.setting), slog.String("error", msg))
	}
	return c.cert, nil
}
