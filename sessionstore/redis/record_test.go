package redis

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// TestDecodeRecordV1: records written in format 1 (the session without its
// tokens, then the tokens) still read after an upgrade.
func TestDecodeRecordV1(t *testing.T) {
	now := time.Now().UTC()
	s := &sessionstore.Session{Key: "k", Handle: "h", Subject: "s", CreatedAt: now,
		LastSeen: now.Add(time.Second), ExpiresAt: now.Add(time.Hour)}
	meta, err := sessionstore.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	at, sec := []byte("sealed access"), []byte("sealed secrets")
	b := []byte{recordFormatV1}
	for _, n := range []int64{3, nanos(s.LastSeen), nanos(s.ExpiresAt), ceilMs(s.ExpiresAt)} {
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(meta)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(at)))
	b = append(append(append(b, meta...), at...), sec...)
	got, err := decodeRecord("k", b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 3 || got.Handle != "h" || !got.LastSeen.Equal(s.LastSeen) || !got.ExpiresAt.Equal(s.ExpiresAt) ||
		!bytes.Equal(got.AccessToken, at) || !bytes.Equal(got.Secrets, sec) {
		t.Errorf("decoded %+v", got)
	}
	if _, err := decodeRecord("k", b[:headerSizeV1-1]); !errors.Is(err, sessionstore.ErrInvalid) {
		t.Errorf("truncated v1 record: error %v, want ErrInvalid", err)
	}
}
