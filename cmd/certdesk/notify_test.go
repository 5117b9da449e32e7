package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/notify"
)

// TestNotifications_NewRequestAndDecisionReachAWebhook runs the portal with
// a webhook receiver on loopback: a submitted request and its decision each
// arrive, signed with the configured secret.
func TestNotifications_NewRequestAndDecisionReachAWebhook(t *testing.T) {
	secret := "webhook-secret-for-tests-0123456789"
	var mu sync.Mutex
	var events []map[string]any
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify([]byte(secret), r.Header.Get(notify.HeaderTimestamp), r.Header.Get(notify.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		json.Unmarshal(body, &ev)
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}))
	defer recv.Close()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "webhook-secret")
	os.WriteFile(secretFile, []byte(secret), 0o600)
	tp := startPortalWith(t, "sqlite", dir, dsnFor(t, "sqlite", dir), true, io.Discard,
		"notifications:", "  poll_interval: 100ms", "  webhooks:", fmt.Sprintf("    - url: %s\n      secret_file: %s", recv.URL, secretFile))
	_, csr := newCSR(t, "notify.acme.example")
	r := tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr})
	tp.must(200, "admin", "POST", "/api/v1/requests/"+r["id"].(string)+"/approve", map[string]string{"reason": "ok"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := map[string]bool{}
		for _, e := range events {
			got[fmt.Sprint(e["type"])] = true
		}
		mu.Unlock()
		if got[notify.EventRequestSubmitted] && got[notify.EventRequestDecided] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook received %v, want %s and %s", got, notify.EventRequestSubmitted, notify.EventRequestDecided)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
