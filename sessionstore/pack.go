package sessionstore

import (
	"encoding/json"
	"fmt"
)

// PackToken turns a token into the bytes that are sealed for the store.
// UnpackToken reverses it.
func PackToken(token string) []byte { return []byte(token) }

// UnpackToken reverses PackToken.
func UnpackToken(b []byte) (string, error) { return string(b), nil }

// EncodeSecrets turns the refresh and ID token into the bytes that are
// sealed for the store. DecodeSecrets reverses it.
func EncodeSecrets(s Secrets) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode secrets: %w", err)
	}
	return b, nil
}

// DecodeSecrets reverses EncodeSecrets.
func DecodeSecrets(b []byte) (Secrets, error) {
	var s Secrets
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%w: decode secrets: %v", ErrInvalid, err)
	}
	return s, nil
}
