package bff

import "testing"

func TestSafeReturnTo(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/", "/"},
		{"/dashboard", "/dashboard"},
		{"/a/b?x=1#frag", "/a/b?x=1#frag"},
		{"/caf%C3%A9", "/caf%C3%A9"},
		{"", "/"},
		{"dashboard", "/"},
		{"//evil.example", "/"},
		{"///evil.example", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"https://evil.example", "/"},
		{"https:/evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%2fevil.example", "/"},
		{"%2F%2Fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%5cevil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/%09/evil.example", "/"},
		{"/%0a/evil.example", "/"},
		{"/%E0%A4%A", "/"}, // invalid escape
		{"/" + string(make([]byte, 3000)), "/"},
	}
	for _, tt := range tests {
		if got := safeReturnTo(tt.in); got != tt.want {
			t.Errorf("safeReturnTo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAmbiguousPath(t *testing.T) {
	for _, p := range []string{"/api/x", "/", "/assets/app-1.js", "/api/a-b_c~d"} {
		if r := ambiguousPath(p); r != "" {
			t.Errorf("ambiguousPath(%q) = %q, want accepted", p, r)
		}
	}
	for _, p := range []string{"/api/../admin", "/api/%2e%2e/admin", "/api/%2E%2E/admin", "/api/.%2e/admin", "/api//x", "/api/%2fx", "/api/%2Fx", "/api\\x", "/api/%5cx", "/api/%00", "/api/x%0d%0a", "/api/./x", "/api/..", "api/x"} {
		if r := ambiguousPath(p); r == "" {
			t.Errorf("ambiguousPath(%q) accepted, want refused", p)
		}
	}
}
