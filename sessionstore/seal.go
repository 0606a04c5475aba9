package sessionstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// KeySize is the length of a sealing key: 32 bytes, AES-256.
const KeySize = 32

const (
	sealVersion = 1
	keyIDSize   = 4
	nonceSize   = 12
	// sealOverhead is the version byte, the key id, the nonce and the GCM tag.
	sealOverhead = 1 + keyIDSize + nonceSize + 16
)

// ErrUnsealable: a sealed value was tampered with, belongs to another
// session or field, or was sealed with a key that is no longer configured.
var ErrUnsealable = errors.New("sessionstore: cannot unseal value")

// Sealer encrypts tokens before they reach a store, with AES-256-GCM.
//
// The first key seals; every key opens, so keys rotate by putting a new key
// first and dropping the old one once the sessions sealed with it have
// expired. Each sealed value names its key by a short fingerprint, and is
// bound (as GCM associated data) to the session key and the field it belongs
// to: a value copied into another session or another field does not open.
type Sealer struct {
	current keyEntry
	byID    map[[keyIDSize]byte]cipher.AEAD
}

type keyEntry struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// NewSealer builds a Sealer from one or more 32-byte keys, current key first.
func NewSealer(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("sessionstore: no sealing key")
	}
	s := &Sealer{byID: make(map[[keyIDSize]byte]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("sessionstore: sealing key %d is %d bytes, want %d", i+1, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("sessionstore: sealing key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("sessionstore: sealing key %d: %w", i+1, err)
		}
		id := keyID(k)
		if _, dup := s.byID[id]; dup {
			return nil, fmt.Errorf("sessionstore: sealing key %d repeats an earlier key", i+1)
		}
		s.byID[id] = aead
		if i == 0 {
			s.current = keyEntry{id: id, aead: aead}
		}
	}
	return s, nil
}

// keyID fingerprints a key without revealing it.
func keyID(k []byte) [keyIDSize]byte {
	sum := sha256.Sum256(append([]byte("bff-seal-key-id:"), k...))
	var id [keyIDSize]byte
	copy(id[:], sum[:])
	return id
}

// Seal encrypts plaintext for the given session key and field.
func (s *Sealer) Seal(sessionKey, field string, plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+keyIDSize+nonceSize, sealOverhead+len(plaintext))
	out[0] = sealVersion
	copy(out[1:], s.current.id[:])
	nonce := out[1+keyIDSize:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("sessionstore: seal: %w", err)
	}
	return s.current.aead.Seal(out, nonce, plaintext, associatedData(sessionKey, field)), nil
}

// Open decrypts a value sealed by Seal for the same session key and field.
func (s *Sealer) Open(sessionKey, field string, sealed []byte) ([]byte, error) {
	if len(sealed) < sealOverhead || sealed[0] != sealVersion {
		return nil, ErrUnsealable
	}
	var id [keyIDSize]byte
	copy(id[:], sealed[1:])
	aead, ok := s.byID[id]
	if !ok {
		return nil, ErrUnsealable
	}
	nonce := sealed[1+keyIDSize : 1+keyIDSize+nonceSize]
	plain, err := aead.Open(nil, nonce, sealed[1+keyIDSize+nonceSize:], associatedData(sessionKey, field))
	if err != nil {
		return nil, ErrUnsealable
	}
	return plain, nil
}

func associatedData(sessionKey, field string) []byte {
	return []byte(field + "\x00" + sessionKey)
}
