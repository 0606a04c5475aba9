package bff_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/tokenpack"
)

// holdRefresh holds refresh grants on their way to the IdP until release is
// closed, reporting each on arrived.
type holdRefresh struct {
	arrived chan struct{}
	release chan struct{}
}

func (h *holdRefresh) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && strings.HasSuffix(req.URL.Path, "/token") {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		if form, _ := url.ParseQuery(string(body)); form.Get("grant_type") == "refresh_token" {
			h.arrived <- struct{}{}
			<-h.release
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// A refresher whose lock lease ran out while the IdP answered finds that a
// newer token set was written meanwhile (by the instance that took the lock
// over). It must not overwrite that set: it revokes the tokens it got and
// uses the stored ones.
func TestStaleRefresherDoesNotOverwriteANewerTokenSet(t *testing.T) {
	hold := &holdRefresh{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	st := mustStartStack(t, stackOptions{accessTokenLifetime: 2 * time.Second, idpClient: &http.Client{Transport: hold}})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	time.Sleep(2100 * time.Millisecond)

	done := b.apiLater("/api/whoami")
	select {
	case <-hold.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no refresh reached the IdP")
	}

	// Meanwhile another instance, holding the lock after this one's lease
	// expired, stores a newer token set.
	list, err := st.store.ListBySubject(t.Context(), "user-alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions: %v %d", err, len(list))
	}
	newer := list[0]
	other := st.newBrowser(t)
	other.mustLogin(t, "bob") // a fresh, valid access token to store as the newer set
	fresh := sessionTokens(t, st, "user-bob")[0]
	sealer, err := sessionstore.NewSealer(st.cfg.Keys)
	if err != nil {
		t.Fatal(err)
	}
	if newer.AccessToken, err = sealer.Seal(newer.Key, "access_token", tokenpack.Pack(fresh)); err != nil {
		t.Fatal(err)
	}
	newer.AccessIssuedAt = time.Now()
	newer.AccessExpiresAt = time.Now().Add(time.Hour).Truncate(time.Second)
	if err := st.store.Update(t.Context(), newer); err != nil {
		t.Fatalf("the other instance's write: %v", err)
	}
	close(hold.release)
	if status := <-done; status != http.StatusOK {
		t.Errorf("the request of the stale refresher: %d, want 200 with the stored access token", status)
	}

	cur, err := st.store.Get(t.Context(), newer.Key)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != newer.Version || !cur.AccessExpiresAt.Equal(newer.AccessExpiresAt) {
		t.Errorf("the stale refresher overwrote the newer token set: version %d → %d, expiry %v → %v",
			newer.Version, cur.Version, newer.AccessExpiresAt, cur.AccessExpiresAt)
	}
	// The refresh token the stale refresher got is revoked, not left live.
	if got := tokensOf(t, st, cur)[0]; got != fresh {
		t.Error("the stored access token is not the newer set's")
	}
	if n := st.op.ActiveRefreshTokens("user-alice"); n != 0 {
		t.Errorf("%d refresh tokens live at the IdP, want 0 (the stale refresher's revoked)", n)
	}
}
