package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// signCounter counts the HSM signatures the workflow asks for, per serial.
type signCounter struct {
	issuance.Issuer
	mu     sync.Mutex
	signed map[string]int
}

func (c *signCounter) Issue(p *signer.Prepared) ([]byte, error) {
	der, err := c.Issuer.Issue(p)
	if err == nil {
		c.mu.Lock()
		c.signed[p.Serial.String()]++
		c.mu.Unlock()
	}
	return der, err
}

// call sends one API request with who's token from a load goroutine and
// returns the status (0 when no answer came) and the decoded body.
func (tp *testPortal) call(client *http.Client, who, method, path string, body any) (int, map[string]any) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, tp.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tp.Tokens[who])
	res, err := client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// TestPortal_PostgresRestartUnderLoad_NothingStrandedNoSerialTwice runs
// partners submitting and admins approving from several clients while the
// portal's PostgreSQL (a throwaway one this test started) is stopped for
// two seconds and started again. Every answer during the outage is a 503
// (never a 500); afterwards, with recovery run, every approved request has
// exactly one certificate, none is left pending or stranded, and the HSM
// signed no serial twice. The figures are logged for the closing note.
func TestPortal_PostgresRestartUnderLoad_NothingStrandedNoSerialTwice(t *testing.T) {
	const clients = 6
	pg := startThrowawayPostgres(t)
	tp := startPortalAt(t, "postgres", t.TempDir(), pg.DSN, true)
	wf := tp.P.Workflow
	counter := &signCounter{Issuer: wf.Issuer, signed: map[string]int{}}
	wf.Issuer = counter

	// Load: each client submits a request as a partner and approves it as
	// an admin, over and over, until stop.
	var (
		mu       sync.Mutex
		byStatus = map[int]int{}
		dropped  int
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	record := func(st int) {
		mu.Lock()
		defer mu.Unlock()
		if st == 0 {
			dropped++
			return
		}
		byStatus[st]++
	}
	_, csrPEM := newCSR(t, "load.acme.example")
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 15 * time.Second}
			admin := "admin"
			if i%2 == 1 {
				admin = "admin2"
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				st, r := tp.call(client, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csrPEM})
				record(st)
				if st != http.StatusCreated {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				st, _ = tp.call(client, admin, "POST", "/api/v1/requests/"+r["id"].(string)+"/approve", map[string]any{"reason": "load"})
				record(st)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	pg.Stop()
	time.Sleep(2 * time.Second)
	pg.Start()
	back := time.Now()
	var recovered time.Duration
	for recovered == 0 {
		st, _ := tp.call(http.DefaultClient, "auditor", "GET", "/api/v1/requests?limit=1", nil)
		if st == http.StatusOK {
			recovered = time.Since(back)
		} else if time.Since(back) > 30*time.Second {
			t.Fatalf("the portal did not answer 200 within 30 s of the database's return (last %d)", st)
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	// Recovery, as the serving process runs it every few seconds, once the
	// leases and the grace of what was in flight have passed.
	later := time.Now().Add(2 * models.IssuanceLease)
	tp.P.Store.Now = func() time.Time { return later }
	ctx := context.Background()
	var finished int
	for range 5 {
		fin, failed, err := wf.Recover(ctx)
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		if failed != 0 {
			t.Errorf("recovery marked %d issuances failed", failed)
		}
		finished += fin
		if fin == 0 {
			break
		}
	}

	db := tp.P.Store.DB().WithContext(ctx)
	var stranded, pending, twice, issued int64
	if err := db.Raw(`SELECT count(*) FROM requests r WHERE r.state = 'approved'
		AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.request_id = r.id AND c.state IN ('issued','revoked'))`).Scan(&stranded).Error; err != nil {
		t.Fatal(err)
	}
	db.Raw(`SELECT count(*) FROM certificates WHERE state = 'pending'`).Scan(&pending)
	db.Raw(`SELECT count(*) FROM (SELECT request_id FROM certificates WHERE state IN ('issued','revoked','pending') GROUP BY request_id HAVING count(*) > 1) x`).Scan(&twice)
	db.Raw(`SELECT count(*) FROM certificates WHERE state = 'issued'`).Scan(&issued)
	signedTwice := 0
	for _, n := range counter.signed {
		if n > 1 {
			signedTwice++
		}
	}

	mu.Lock()
	defer mu.Unlock()
	answered, fivexx := 0, map[int]int{}
	statuses := make([]int, 0, len(byStatus))
	for st, n := range byStatus {
		answered += n
		statuses = append(statuses, st)
		if st >= 500 {
			fivexx[st] = n
		}
	}
	sort.Ints(statuses)
	t.Logf("PostgreSQL stopped 2 s under %d clients: %d answers (by status %v), %d without an answer; 5xx %v; "+
		"first 200 %v after the database returned; recovery finished %d issuances; %d certificates issued; "+
		"stranded %d, pending %d, requests with two certificates %d, serials signed twice %d",
		clients, answered, byStatus, dropped, fivexx, recovered.Round(time.Millisecond), finished, issued,
		stranded, pending, twice, signedTwice)
	for st := range fivexx {
		if st != http.StatusServiceUnavailable {
			t.Errorf("%d answers of %d during the outage, want 503 only", fivexx[st], st)
		}
	}
	if fivexx[http.StatusServiceUnavailable] == 0 {
		t.Error("no 503 during a 2 s outage under load: the outage did not happen")
	}
	if stranded != 0 || pending != 0 || twice != 0 || signedTwice != 0 {
		t.Errorf("after the outage and recovery: %d approved requests without a certificate, %d pending, %d requests with two, %d serials signed twice; want none",
			stranded, pending, twice, signedTwice)
	}
	if issued == 0 {
		t.Error("nothing was issued under load")
	}
}
