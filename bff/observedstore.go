package bff

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/bffproxy/bff/sessionstore"
)

// Store operations and results, the label values of
// bff_store_operation_duration_seconds and the names of store spans.
var (
	storeOps = []string{"create", "get", "get_by_handle", "update", "touch", "delete", "tombstone",
		"list_by_subject", "list_by_idp_sid", "list", "lock", "release", "remember", "publish", "ping", "count"}
	storeResults = []string{"ok", "not_found", "conflict", "locked", "invalid", "error"}
	// storeSpanNames are "store.<op>", made once.
	storeSpanNames = func() []string {
		out := make([]string, len(storeOps))
		for i, op := range storeOps {
			out[i] = "store." + op
		}
		return out
	}()
)

const (
	opCreate = iota
	opGet
	opGetByHandle
	opUpdate
	opTouch
	opDelete
	opTombstone
	opListBySubject
	opListByIdPSID
	opList
	opLock
	opRelease
	opRemember
	opPublish
	opPing
	opCount
)

// observedStore times every store operation into the store histogram and,
// when tracing is on, makes it a child span of the request. It wraps the
// Store interface only: optional abilities of the backend (such as
// sessionstore.SessionCounter) are reached with storeAs, which looks
// through the wrapper.
type observedStore struct {
	sessionstore.Store
	grid   *observerGrid
	tracer trace.Tracer // nil: tracing off
}

var _ sessionstore.Store = (*observedStore)(nil)

func newObservedStore(inner sessionstore.Store, m *metrics, tracer trace.Tracer) *observedStore {
	return &observedStore{Store: inner, grid: m.store, tracer: tracer}
}

// Unwrap returns the backend.
func (o *observedStore) Unwrap() sessionstore.Store { return o.Store }

// storeAs returns the store, or the first store behind its wrappers
// (observedStore, a record cache), that is a T.
func storeAs[T any](st sessionstore.Store) (T, bool) {
	for st != nil {
		if t, ok := st.(T); ok {
			return t, true
		}
		u, ok := st.(interface{ Unwrap() sessionstore.Store })
		if !ok {
			break
		}
		st = u.Unwrap()
	}
	var zero T
	return zero, false
}

func (o *observedStore) begin(ctx context.Context, op int) (context.Context, trace.Span) {
	if o.tracer == nil {
		return ctx, nil
	}
	return o.tracer.Start(ctx, storeSpanNames[op], trace.WithSpanKind(trace.SpanKindClient))
}

func (o *observedStore) end(op int, start time.Time, span trace.Span, err error) {
	result := storeResult(err)
	o.grid.at(op, result).Observe(time.Since(start).Seconds())
	if span != nil {
		span.SetAttributes(attribute.String("bff.store.result", storeResults[result]))
		if result == len(storeResults)-1 {
			span.SetStatus(codes.Error, "store error")
		}
		span.End()
	}
}

func storeResult(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, sessionstore.ErrNotFound):
		return 1
	case errors.Is(err, sessionstore.ErrConflict):
		return 2
	case errors.Is(err, sessionstore.ErrLocked):
		return 3
	case errors.Is(err, sessionstore.ErrInvalid):
		return 4
	}
	return 5
}

func (o *observedStore) Create(ctx context.Context, s *sessionstore.Session) error {
	start := time.Now()
	ctx, span := o.begin(ctx, opCreate)
	err := o.Store.Create(ctx, s)
	o.end(opCreate, start, span, err)
	return err
}

func (o *observedStore) Get(ctx context.Context, key string) (*sessionstore.Session, error) {
	start := time.Now()
	ctx, span := o.begin(ctx, opGet)
	s, err := o.Store.Get(ctx, key)
	o.end(opGet, start, span, err)
	return s, err
}

func (o *observedStore) GetByHandle(ctx context.Context, handle string) (*sessionstore.Session, error) {
	start := time.Now()
	ctx, span := o.begin(ctx, opGetByHandle)
	s, err := o.Store.GetByHandle(ctx, handle)
	o.end(opGetByHandle, start, span, err)
	return s, err
}

func (o *observedStore) Update(ctx context.Context, s *sessionstore.Session) error {
	start := time.Now()
	ctx, span := o.begin(ctx, opUpdate)
	err := o.Store.Update(ctx, s)
	o.end(opUpdate, start, span, err)
	return err
}

func (o *observedStore) Touch(ctx context.Context, key string, lastSeen, expiresAt time.Time) error {
	start := time.Now()
	ctx, span := o.begin(ctx, opTouch)
	err := o.Store.Touch(ctx, key, lastSeen, expiresAt)
	o.end(opTouch, start, span, err)
	return err
}

func (o *observedStore) Delete(ctx context.Context, key string, tomb sessionstore.Tombstone) (*sessionstore.Session, error) {
	start := time.Now()
	ctx, span := o.begin(ctx, opDelete)
	s, err := o.Store.Delete(ctx, key, tomb)
	o.end(opDelete, start, span, err)
	return s, err
}

func (o *observedStore) Tombstone(ctx context.Context, key string) (sessionstore.Tombstone, error) {
	start := time.Now()
	ctx, span := o.begin(ctx, opTombstone)
	t, err := o.Store.Tombstone(ctx, key)
	o.end(opTombstone, start, span, err)
	return t, err
}

func (o *observedStore) ListBySubject(ctx context.Context, subject string) ([]*sessionstore.Session, error) {
	start := time.Now()
	ctx, span := o.begin(ctx, opListBySubject)
	l, err := o.Store.ListBySubject(ctx, subject)
	o.end(opListBySubject, start, span, err)
	return l, err
}

func (o *observedStore) ListByIdPSID(ctx context.Context, idpSID string) ([]*sessionstore.Session, error) {
	start := time.Now()
	ctx, span := o.begin(ctx, opListByIdPSID)
	l, err := o.Store.ListByIdPSID(ctx, idpSID)
	o.end(opListByIdPSID, start, span, err)
	return l, err
}

func (o *observedStore) List(ctx context.Context, cursor string, limit int) ([]*sessionstore.Session, string, error) {
	start := time.Now()
	ctx, span := o.begin(ctx, opList)
	l, next, err := o.Store.List(ctx, cursor, limit)
	o.end(opList, start, span, err)
	return l, next, err
}

func (o *observedStore) Lock(ctx context.Context, name string, ttl time.Duration) (sessionstore.Lock, error) {
	start := time.Now()
	ctx, span := o.begin(ctx, opLock)
	l, err := o.Store.Lock(ctx, name, ttl)
	o.end(opLock, start, span, err)
	if err != nil {
		return nil, err
	}
	return observedLock{Lock: l, o: o}, nil
}

type observedLock struct {
	sessionstore.Lock
	o *observedStore
}

func (l observedLock) Release(ctx context.Context) error {
	start := time.Now()
	ctx, span := l.o.begin(ctx, opRelease)
	err := l.Lock.Release(ctx)
	l.o.end(opRelease, start, span, err)
	return err
}

func (o *observedStore) Remember(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	start := time.Now()
	ctx, span := o.begin(ctx, opRemember)
	first, err := o.Store.Remember(ctx, id, ttl)
	o.end(opRemember, start, span, err)
	return first, err
}

func (o *observedStore) Publish(ctx context.Context, ev sessionstore.Event) error {
	start := time.Now()
	ctx, span := o.begin(ctx, opPublish)
	err := o.Store.Publish(ctx, ev)
	o.end(opPublish, start, span, err)
	return err
}

func (o *observedStore) Ping(ctx context.Context) error {
	start := time.Now()
	ctx, span := o.begin(ctx, opPing)
	err := o.Store.Ping(ctx)
	o.end(opPing, start, span, err)
	return err
}

// CountSessions counts through the backend's SessionCounter, timed like
// any other operation; the caller checks storeAs first.
func (o *observedStore) countSessions(ctx context.Context, c sessionstore.SessionCounter) (int, error) {
	start := time.Now()
	ctx, span := o.begin(ctx, opCount)
	n, err := c.CountSessions(ctx)
	o.end(opCount, start, span, err)
	return n, err
}
