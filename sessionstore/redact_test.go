package sessionstore_test

import (
	"strings"
	"testing"

	"github.com/bffproxy/bff/sessionstore"
)

func TestRedactURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://user:SECRET@host:6379/0", "redis://user:xxxxx@host:6379/0"},
		{"redis://:SECRET@host", "redis://:xxxxx@host"},
		{"redis://SECRET@host", "redis://xxxxx@host"},
		{"redis://user:pa/ss/SECRET@host:6379/0", "redis://user:xxxxx@host:6379/0"},
		{"redis://user:p?a#s@SECRET@host/0", "redis://user:xxxxx@host/0"},
		{"rediss://u:p%2FSECRET@h1:6379,h2:6379", "rediss://u:xxxxx@h1:6379,h2:6379"},
		{"redis+sentinel://h1:26379,h2:26379/mymaster/0?sentinel_password=SECRET&dial_timeout=2s",
			"redis+sentinel://h1:26379,h2:26379/mymaster/0?sentinel_password=xxxxx&dial_timeout=2s"},
		{"redis+sentinel://u:SECRET@h1/m?sentinel_username=s&sentinel_password=SECRET",
			"redis+sentinel://u:xxxxx@h1/m?sentinel_username=s&sentinel_password=xxxxx"},
		{"redis://h/0?password=SECRET", "redis://h/0?password=xxxxx"},
		{"redis://h/0?Password=SECRET;client_name=x", "redis://h/0?Password=xxxxx&client_name=x"},
		{"redis://h/0?api%5Ftoken=SECRET&x=1", "redis://h/0?api%5Ftoken=xxxxx&x=1"},
		{"redis://h/0?client_secret=SECRET&tls_key=SECRET&auth=SECRET&pwd=SECRET&credentials=SECRET",
			"redis://h/0?client_secret=xxxxx&tls_key=xxxxx&auth=xxxxx&pwd=xxxxx&credentials=xxxxx"},
		{"redis://h/0#SECRET", "redis://h/0#xxxxx"},
		// An "@" in a query value hides more than needed, never less.
		{"redis://h/0?client_name=a@b", "redis://xxxxx@b"},
		{"sqlite:/var/lib/bff/sessions.db", "sqlite:/var/lib/bff/sessions.db"},
		{"user:SECRET@host", "user:xxxxx@host"},
		{"", ""},
	}
	for _, c := range cases {
		got := sessionstore.RedactURL(c.in)
		if got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(got, "SECRET") {
			t.Errorf("RedactURL(%q) = %q still holds the secret", c.in, got)
		}
	}
}
