package bff

import (
	"fmt"
	"testing"
	"time"
)

func TestAddrLimiterBudgetRefillAndBound(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newAddrLimiter(3, 3*time.Second, 100)
	for i := range 3 {
		if !l.Take("192.0.2.1", now) {
			t.Fatalf("event %d refused within the burst", i+1)
		}
	}
	if l.Take("192.0.2.1", now) || l.Allowed("192.0.2.1", now) {
		t.Fatal("fourth event allowed")
	}
	if got := l.RetryAfter("192.0.2.1", now); got != time.Second {
		t.Errorf("RetryAfter = %v, want 1s", got)
	}
	if !l.Take("192.0.2.2", now) {
		t.Error("another address shares the budget")
	}
	if !l.Allowed("192.0.2.1", now.Add(time.Second)) {
		t.Error("no event regained after a second")
	}

	// IPv6 counts per /64; mapped IPv4 as IPv4.
	for i := range 3 {
		l.Spend(fmt.Sprintf("2001:db8::%x", i+1), now)
	}
	if l.Allowed("2001:db8::ffff:1", now) {
		t.Error("a fresh address in a spent /64 has budget")
	}
	if !l.Allowed("2001:db8:0:1::1", now) {
		t.Error("the next /64 shares the budget")
	}
	for range 3 {
		l.Spend("::ffff:198.51.100.7", now)
	}
	if l.Allowed("198.51.100.7", now) {
		t.Error("IPv4-mapped IPv6 escapes its IPv4 budget")
	}

	// Bounded: a spray of addresses never grows the table past its size,
	// and an address seen again and again stays tracked.
	l.Spend("203.0.113.9", now)
	l.Spend("203.0.113.9", now)
	l.Spend("203.0.113.9", now)
	for i := range 1000 {
		l.Spend(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
		if i%50 == 0 && l.Allowed("203.0.113.9", now) {
			t.Fatalf("spent address forgotten after %d others", i)
		}
		if n := l.Len(); n > 100 {
			t.Fatalf("table holds %d addresses, bound is 100", n)
		}
	}

	var off *addrLimiter = newAddrLimiter(0, time.Minute, 10)
	for range 100 {
		if !off.Take("192.0.2.1", now) {
			t.Fatal("a limiter turned off refused")
		}
	}
}
