package redis

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bffproxy/bff/sessionstore"
)

// ParseURL turns a store URL (see the package comment for the forms) into
// options for goredis.NewUniversalClient. It parses the URL itself rather
// than with goredis.ParseURL because the comma-separated host lists of the
// Sentinel and Cluster forms are not URLs net/url accepts, and so that every
// mistake is reported by name. Errors never repeat the password.
func ParseURL(rawURL string) (*goredis.UniversalOptions, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("redis: store URL %s: %s", redactURL(rawURL), fmt.Sprintf(format, args...))
	}
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, bad("missing scheme (want redis://, rediss://, redis+sentinel:// or redis+cluster://)")
	}
	var tlsOn, sentinel, cluster bool
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		tlsOn = true
	case "redis+sentinel":
		sentinel = true
	case "rediss+sentinel":
		sentinel, tlsOn = true, true
	case "redis+cluster":
		cluster = true
	case "rediss+cluster":
		cluster, tlsOn = true, true
	default:
		return nil, bad("unsupported scheme %q (want redis, rediss, redis+sentinel, rediss+sentinel, redis+cluster or rediss+cluster)", scheme)
	}
	if strings.IndexByte(rest, '#') >= 0 {
		// Not echoed: it may be the tail of a password with a "#" in it.
		return nil, bad("unexpected fragment: a '#' (percent-encode it as %%23 in a password)")
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	if strings.IndexByte(path, '@') >= 0 {
		// A password with an unescaped "/": the host and path as parsed
		// would be pieces of it, so neither is echoed.
		return nil, bad("the user name or password holds an unescaped '/' (percent-encode it as %%2F)")
	}

	o := &goredis.UniversalOptions{}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo := authority[:at]
		authority = authority[at+1:]
		rawUser, rawPass, hasPass := strings.Cut(userinfo, ":")
		user, err := url.PathUnescape(rawUser)
		if err != nil {
			return nil, bad("bad escape in user name")
		}
		pass, err := url.PathUnescape(rawPass)
		if err != nil {
			return nil, bad("bad escape in password")
		}
		if hasPass && pass == "" {
			return nil, bad("empty password after ':'")
		}
		o.Username, o.Password = user, pass
	}

	defaultPort := "6379"
	if sentinel {
		defaultPort = "26379"
	}
	if authority == "" {
		return nil, bad("missing host")
	}
	var hostNames []string
	for i, h := range strings.Split(authority, ",") {
		addr, host, err := hostPort(h, defaultPort)
		if err != nil {
			return nil, bad("host %d %q: %v", i+1, h, err)
		}
		o.Addrs = append(o.Addrs, addr)
		hostNames = append(hostNames, host)
	}
	if !sentinel && !cluster && len(o.Addrs) > 1 {
		return nil, bad("%d hosts given; a list of hosts needs redis+sentinel:// or redis+cluster://", len(o.Addrs))
	}

	segs := strings.Split(path, "/")
	if path == "" {
		segs = nil
	}
	dbSeg := ""
	switch {
	case sentinel:
		if len(segs) == 0 || segs[0] == "" {
			return nil, bad("missing master name (want redis+sentinel://host:port/mastername[/db])")
		}
		name, err := url.PathUnescape(segs[0])
		if err != nil {
			return nil, bad("bad escape in master name")
		}
		o.MasterName = name
		if len(segs) > 2 {
			return nil, bad("unexpected path %q (want /mastername[/db])", "/"+path)
		}
		if len(segs) == 2 {
			dbSeg = segs[1]
		}
	case cluster:
		if len(segs) > 1 || (len(segs) == 1 && segs[0] != "" && segs[0] != "0") {
			return nil, bad("unexpected path %q: Redis Cluster has only database 0", "/"+path)
		}
		o.IsClusterMode = true
	default:
		if len(segs) > 1 {
			return nil, bad("unexpected path %q (want /db)", "/"+path)
		}
		if len(segs) == 1 {
			dbSeg = segs[0]
		}
	}
	if dbSeg != "" {
		db, err := strconv.Atoi(dbSeg)
		if err != nil || db < 0 {
			return nil, bad("database %q is not a number >= 0", dbSeg)
		}
		o.DB = db
	}

	// Short defaults: the store sits on every request's path, and go-redis's
	// own (5 s, retried after a timeout) made a frozen server hold requests
	// for 10 s before the 503. ContextTimeoutEnabled lets a request's
	// deadline bound the socket reads too.
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 2*time.Second, time.Second, time.Second
	o.ContextTimeoutEnabled = true
	// RESP2: the store uses nothing of RESP3, and with RESP3 go-redis
	// runs its pushed-notification check before every reply, on every
	// session read (3.6 % of a proxied call's CPU in the bench's profile,
	// the reply's own read included).
	o.Protocol = 2

	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, bad("malformed query (a bad %%-escape or a ';')")
	}
	for name, vals := range q {
		v := vals[len(vals)-1]
		var err error
		switch name {
		case "dial_timeout":
			o.DialTimeout, err = positiveDuration(v)
		case "read_timeout":
			o.ReadTimeout, err = positiveDuration(v)
		case "write_timeout":
			o.WriteTimeout, err = positiveDuration(v)
		case "pool_size":
			o.PoolSize, err = strconv.Atoi(v)
			if err == nil && o.PoolSize <= 0 {
				err = fmt.Errorf("must be > 0")
			}
		case "client_name":
			o.ClientName = v
		case "sentinel_username", "sentinel_password":
			if !sentinel {
				return nil, bad("query parameter %s is only for redis+sentinel://", name)
			}
			if name == "sentinel_username" {
				o.SentinelUsername = v
			} else {
				o.SentinelPassword = v
			}
		default:
			if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz_") != "" || strings.IndexByte(rawQuery, '@') >= 0 {
				// Not echoed: with a "?" in a password, the "name" is its tail.
				return nil, bad("malformed query parameter (known: %s)", knownParams)
			}
			return nil, bad("unknown query parameter %q (known: %s)", name, knownParams)
		}
		if err != nil {
			return nil, bad("query parameter %s=%q: %v", name, v, err)
		}
	}

	if tlsOn {
		// With one host, verify the certificate against that name (also for
		// Cluster nodes and Sentinel-announced primaries, as go-redis's own
		// URL parsers do: managed services issue one certificate for the
		// endpoint). With several, crypto/tls verifies each connection
		// against the host it dials.
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if len(hostNames) == 1 {
			o.TLSConfig.ServerName = hostNames[0]
		}
	}
	return o, nil
}

const knownParams = "dial_timeout, read_timeout, write_timeout, pool_size, client_name, sentinel_username, sentinel_password"

// hostPort validates one host[:port] (IPv6 in brackets) and fills in the
// default port.
func hostPort(s, defaultPort string) (addr, host string, err error) {
	if s == "" {
		return "", "", fmt.Errorf("empty host")
	}
	host, port := s, defaultPort
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", fmt.Errorf("missing ']' after IPv6 address")
		}
		host = s[1:end]
		switch tail := s[end+1:]; {
		case tail == "":
		case strings.HasPrefix(tail, ":"):
			port = tail[1:]
		default:
			return "", "", fmt.Errorf("unexpected %q after IPv6 address", tail)
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if strings.Contains(host, ":") {
			return "", "", fmt.Errorf("IPv6 address must be in brackets")
		}
	}
	if host == "" {
		return "", "", fmt.Errorf("empty host name")
	}
	if strings.ContainsAny(host, " /?#@") {
		return "", "", fmt.Errorf("invalid host name")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return net.JoinHostPort(host, port), host, nil
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("not a duration like 2s or 500ms")
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be > 0")
	}
	return d, nil
}

// redactURL is a store URL as errors show it: quoted, credentials hidden.
func redactURL(raw string) string { return strconv.Quote(sessionstore.RedactURL(raw)) }
