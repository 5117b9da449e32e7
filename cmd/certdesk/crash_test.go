package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/web"
	"github.com/certdesk/certdesk/web/devidp"
)

// statusCounter counts the answers a test received, by status.
type statusCounter struct {
	mu       sync.Mutex
	byStatus map[int]int
	dropped  int // no answer: the connection died
}

func (s *statusCounter) add(status int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.dropped++
		return
	}
	s.byStatus[status]++
}

func (s *statusCounter) answered() (n int, fivexx map[int]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fivexx = map[int]int{}
	for st, c := range s.byStatus {
		n += c
		if st >= 500 {
			fivexx[st] = c
		}
	}
	return n, fivexx
}

// TestProcess_KilledDuringApproval_ApprovalAndReservationTogetherOrNotAtAll
// kills `certdesk serve` with SIGKILL while approvals are in flight, each
// held up, after its approval and before its reservation, by a lock the test
// takes on the certificates table. Approval and reservation are one
// transaction, so the crash leaves those requests submitted, with no
// certificate and none stranded; after a restart they are approved again,
// every request ends with exactly one certificate, and no serial exists
// twice.
func TestProcess_KilledDuringApproval_ApprovalAndReservationTogetherOrNotAtAll(t *testing.T) {
	const before, inFlight = 5, 15
	ctx := context.Background()
	dsn := modelstest.PostgresDSN(t)
	addr := freeAddr(t)
	url := "http://" + addr
	idp, err := devidp.Start(ctx, devidp.Config{
		Users:   []devidp.User{{Subject: "ada", Username: "ada", Groups: []string{"certdesk-admins"}}},
		Clients: []devidp.Client{{ID: "certdesk", Secret: "s3cret-for-tests", RedirectURIs: []string{url + "/auth/callback"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	cfgPath := writeTestConfig(t, t.TempDir(), addr, url, idp.Issuer, "postgres", dsn)
	// Room for every approval in flight to wait in the database, and more.
	appendConfig(t, cfgPath, fmt.Sprintf("  max_connections: %d", inFlight+10))
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.InitCA(cfg.CA, signer.Keys{}, cfg.PKIURL, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	store, err := models.Open(ctx, models.Config{Driver: "postgres", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	sys := models.Actor{Subject: "system:test", Role: models.RoleSystem, Source: "test"}
	if err := store.CreateOrg(ctx, sys, &models.Organization{Slug: "acme", Name: "Acme", DNSSuffixes: models.StringList{"acme.example"}}); err != nil {
		t.Fatal(err)
	}
	tp := &testPortal{URL: url, Tokens: map[string]string{}, t: t}
	for name, act := range map[string]models.Actor{"partner": principals["partner"], "admin": principals["admin"]} {
		tok, hash := web.NewAPIToken()
		if err := store.CreateToken(ctx, sys, &models.APIToken{Name: name, Subject: act.Subject, Role: act.Role, Org: act.Org, Hash: hash, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		tp.Tokens[name] = tok
	}

	first := startProcess(t, nil, "serve", "--config", cfgPath)
	waitReady(t, url+"/readyz", first)
	answers := &statusCounter{byStatus: map[int]int{}}
	approve := func(id string) {
		body, _ := json.Marshal(map[string]string{"reason": "ok"})
		req, _ := http.NewRequest("POST", url+"/api/v1/requests/"+id+"/approve", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tp.Tokens["admin"])
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			answers.add(res.StatusCode, nil)
			return
		}
		answers.add(0, err)
	}
	var ids []string
	for i := range before + inFlight {
		_, csrPEM := newCSR(t, fmt.Sprintf("svc%d.acme.example", i))
		r := tp.must(http.StatusCreated, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csrPEM})
		answers.add(http.StatusCreated, nil)
		ids = append(ids, r["id"].(string))
	}
	for _, id := range ids[:before] {
		approve(id)
	}

	// Hold up every reservation: INSERT into certificates waits for this lock.
	lock := store.DB().Begin()
	if err := lock.Exec("LOCK TABLE certificates IN EXCLUSIVE MODE").Error; err != nil {
		t.Fatal(err)
	}
	var flying sync.WaitGroup
	for _, id := range ids[before:] {
		flying.Add(1)
		go func() { defer flying.Done(); approve(id) }()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var approved int64
		store.DB().Model(&models.Request{}).Where("state = ?", models.StateApproved).Count(&approved)
		var waiting int64
		store.DB().Raw("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(&waiting)
		if waiting == inFlight {
			if approved != 0 {
				lock.Rollback()
				t.Fatalf("%d approvals committed while their reservation waits; want none", approved)
			}
			break
		}
		if time.Now().After(deadline) {
			lock.Rollback()
			t.Fatalf("approvals in flight: %d waiting for the lock; want %d", waiting, inFlight)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.exited
	flying.Wait()
	lock.Rollback()

	restarted := time.Now()
	second := startProcess(t, nil, "serve", "--config", cfgPath)
	waitReady(t, url+"/readyz", second)
	for _, id := range ids[before:] {
		r := tp.must(http.StatusOK, "partner", "GET", "/api/v1/requests/"+id, nil)
		answers.add(http.StatusOK, nil)
		if r["state"] != models.StateSubmitted || r["certificate_id"] != nil {
			t.Fatalf("request %s after the crash: %v, want submitted without a certificate", id, r)
		}
		approve(id)
	}
	var stranded int64
	deadline = time.Now().Add(3 * time.Minute)
	for {
		var issued int64
		store.DB().Model(&models.Request{}).Where("state = ?", models.StateIssued).Count(&issued)
		store.DB().Model(&models.Request{}).Where("state = ?", models.StateApproved).Count(&stranded)
		if issued == before+inFlight {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests issued %v after the restart; %d still approved without a certificate",
				issued, before+inFlight, time.Since(restarted).Round(time.Second), stranded)
		}
		req, _ := http.NewRequest("GET", url+"/api/v1/requests?state=approved", nil)
		req.Header.Set("Authorization", "Bearer "+tp.Tokens["admin"])
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			answers.add(res.StatusCode, nil)
		} else {
			answers.add(0, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	recovery := time.Since(restarted)

	var duplicateSerials, doubleIssued int64
	store.DB().Raw("SELECT count(*) FROM (SELECT serial FROM certificates GROUP BY serial HAVING count(*) > 1) d").Scan(&duplicateSerials)
	store.DB().Raw("SELECT count(*) FROM (SELECT request_id FROM certificates WHERE state IN ('pending', 'issued', 'revoked') GROUP BY request_id HAVING count(*) > 1) d").Scan(&doubleIssued)
	for _, id := range ids {
		r := tp.must(http.StatusOK, "partner", "GET", "/api/v1/requests/"+id, nil)
		answers.add(http.StatusOK, nil)
		c := tp.must(http.StatusOK, "partner", "GET", "/api/v1/certificates/"+r["certificate_id"].(string), nil)
		answers.add(http.StatusOK, nil)
		if c["state"] != "valid" {
			t.Errorf("request %s: certificate %v", id, c)
		}
	}
	n, fivexx := answers.answered()
	codes := make([]int, 0, len(fivexx))
	for st := range fivexx {
		codes = append(codes, st)
	}
	sort.Ints(codes)
	t.Logf("kill -9 during approval, before reservation: %d approvals before the crash, %d in flight (approved again after it)", before, inFlight)
	t.Logf("requests answered %d, dropped by the crash %d; 5xx by status %v", n, answers.dropped, fivexx)
	t.Logf("requests stranded %d, duplicate serials %d, requests with two live certificates %d; time to recovery %v",
		stranded, duplicateSerials, doubleIssued, recovery.Round(100*time.Millisecond))
	if stranded != 0 || duplicateSerials != 0 || doubleIssued != 0 || len(fivexx) != 0 {
		t.Fatalf("stranded %d, duplicate serials %d, double-issued %d, 5xx %v; want none", stranded, duplicateSerials, doubleIssued, fivexx)
	}
	if answers.dropped != inFlight {
		t.Fatalf("%d approvals dropped by the crash, want the %d in flight", answers.dropped, inFlight)
	}
}
