package bff

import (
	"context"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// knownKeys is the IdP's key set (go-oidc's remote key set) plus the ids of
// the keys that have verified a signature here. go-oidc fetches the IdP's
// JWKS again whenever a token names a key it has not cached — right for a
// key the IdP has just rotated in, but a forged token can name any key id
// it likes. Knowing which ids are real lets the back-channel endpoint
// refuse an unknown one from an address that keeps failing, before any
// fetch.
type knownKeys struct {
	next oidc.KeySet
	algs []jose.SignatureAlgorithm

	mu   sync.RWMutex
	kids map[string]struct{}
}

func newKnownKeys(next oidc.KeySet, algs []string) *knownKeys {
	k := &knownKeys{next: next, kids: map[string]struct{}{}}
	for _, a := range algs {
		k.algs = append(k.algs, jose.SignatureAlgorithm(a))
	}
	return k
}

// VerifySignature verifies jwt with the IdP's keys and remembers the id of
// the key that verified it.
func (k *knownKeys) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.next.VerifySignature(ctx, jwt)
	if err != nil {
		return nil, err
	}
	if jws, perr := jose.ParseSigned(jwt, k.algs); perr == nil && len(jws.Signatures) == 1 {
		k.mu.Lock()
		// Bounded by the keys the IdP has published: only verified ids land here.
		if len(k.kids) < 64 {
			k.kids[jws.Signatures[0].Header.KeyID] = struct{}{}
		}
		k.mu.Unlock()
	}
	return payload, nil
}

// known reports whether kid has verified a signature before.
func (k *knownKeys) known(kid string) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	_, ok := k.kids[kid]
	return ok
}
