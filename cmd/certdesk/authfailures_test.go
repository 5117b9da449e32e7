package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/web"
)

// TestPortal_AuthFailuresFolded_CleanShutdownRecordsTheCount: unknown API
// tokens sent to a running portal are audited once and counted; a clean
// shutdown records the pending count before the store closes, so the audit
// log accounts for every failure.
func TestPortal_AuthFailuresFolded_CleanShutdownRecordsTheCount(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	cfg, err := loadConfig(writeTestConfig(t, dir, ln.Addr().String(), url, "http://"+freeAddr(t), "sqlite", filepath.Join(dir, "certdesk.db")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.InitCA(cfg.CA, signer.Keys{}, cfg.PKIURL, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runPortal(ctx, cfg, portalOptions{Listener: ln}, discardLog(), func(string) { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("the portal did not start: %v", err)
	}
	const n = 7
	for range n {
		req, _ := http.NewRequest("GET", url+"/api/v1/requests", nil)
		req.Header.Set("Authorization", "Bearer "+web.APITokenPrefix+"no-such-token")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("an unknown token: %d, want 401", res.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runPortal: %v", err)
	}

	store, err := openStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	list := func(action string) []models.AuditEvent {
		evs, _, err := store.ListAudit(context.Background(), models.AuditFilter{Action: action, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	first, folded := list(models.ActionAuthCredentialRejected), list(models.ActionAuthFailuresFolded)
	if len(first) != 1 || len(folded) != 1 {
		t.Fatalf("%d auth.credential_rejected and %d auth.failures_folded events, want 1 and 1", len(first), len(folded))
	}
	var d models.AuthFailuresFoldedEvent
	if err := json.Unmarshal([]byte(folded[0].Detail), &d); err != nil || d.Count != n-1 || d.Kind != web.FailureBearer {
		t.Fatalf("folded event %s (err %v), want %d bearer failures", folded[0].Detail, err, n-1)
	}
}
