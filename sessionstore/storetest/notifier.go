package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// receive waits for one event on ch.
func receive(t *testing.T, what string, ch <-chan sessionstore.Event, want sessionstore.Event) {
	t.Helper()
	timeout := time.After(waitEvent)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Errorf("%s: channel closed before the event arrived", what)
				return
			}
			if ev == want {
				return
			}
			// Events of other tests or instances may pass by; keep waiting.
		case <-timeout:
			t.Errorf("%s: event %+v not delivered within %v", what, want, waitEvent)
			return
		}
	}
}

// waitClosed waits for ch to be closed after its subscription's context ended.
func waitClosed(t *testing.T, ch <-chan sessionstore.Event) {
	t.Helper()
	timeout := time.After(waitEvent)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Error("Subscribe channel not closed after its context ended")
			return
		}
	}
}

func testNotifier(t *testing.T, st sessionstore.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch1, err := st.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	ch2, err := st.Subscribe(ctx2)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	ev := sessionstore.Event{Key: sessionstore.KeyFromCookie("c"), Handle: "h-notify", Cause: sessionstore.CauseAdmin}
	if err := st.Publish(context.Background(), ev); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	receive(t, "first subscriber", ch1, ev)
	receive(t, "second subscriber", ch2, ev)

	cancel2()
	waitClosed(t, ch2)

	ev2 := sessionstore.Event{Key: "k2", Handle: "h-notify-2", Cause: sessionstore.CauseBackchannel}
	if err := st.Publish(context.Background(), ev2); err != nil {
		t.Fatalf("Publish after an unsubscribe: %v", err)
	}
	receive(t, "remaining subscriber", ch1, ev2)
	cancel()
	waitClosed(t, ch1)
}
