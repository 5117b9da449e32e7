package revocation_test

import (
	"crypto/x509"
	"encoding/base64"
	"net/url"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer/serial"
)

// servedCRL fetches and parses the served issuing CRL.
func (e *revocationEnv) servedCRL() *x509.RevocationList {
	e.t.Helper()
	_, der := e.get("/crl/issuing.crl", nil)
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		e.t.Fatalf("served issuing CRL: %v", err)
	}
	return crl
}

func TestRevocation_FiftyConcurrentRevocations_NumbersOnlyGoUpAndFinalCRLListsAll(t *testing.T) {
	env := newRevocation(t, modelstest.Postgres(t), hsmCA(t, "burst"), nil)
	const n = 50
	certs := make([]issued, n)
	for i := range certs {
		certs[i] = env.issue("svc" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}

	// Watch the served CRL number while the burst runs.
	stop := make(chan struct{})
	var seen []int64
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			seen = append(seen, env.crlNumber(revocation.CRLIssuing))
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range certs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, err := env.store.RevokeCertificate(bg, admin2, c.cert.ID, models.ReasonSuperseded)
			if err != nil {
				t.Errorf("revoking %s: %v", c.cert.Serial, err)
				return
			}
			env.h.Revoked(rc)
		}()
	}
	wg.Wait()
	took := env.waitFor("a CRL listing all 50", 5*time.Second, func() bool {
		for _, c := range env.h.Status().CRLs {
			if c.Issuer == revocation.CRLIssuing {
				return c.Entries == n
			}
		}
		return false
	})
	close(stop)
	<-watched
	t.Logf("50 revocations: all listed %v after the last revoke returned (%v after the first began)", took, time.Since(start))

	for i := 1; i < len(seen); i++ {
		if seen[i] < seen[i-1] {
			t.Fatalf("served CRL number went down: %d then %d", seen[i-1], seen[i])
		}
	}
	var rows []models.CRL
	if err := env.store.DB().Where("issuer = ?", revocation.CRLIssuing).Order("id").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].Number <= rows[i-1].Number {
			t.Fatalf("stored CRL numbers not increasing: %d then %d", rows[i-1].Number, rows[i].Number)
		}
	}
	t.Logf("%d issuing CRLs stored for the burst (coalesced)", len(rows))
	crl := env.servedCRL()
	listed := map[serial.Number]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		sn, err := serial.FromBig(e.SerialNumber)
		if err != nil {
			t.Fatal(err)
		}
		listed[sn] = e.ReasonCode == models.ReasonSuperseded
	}
	for _, c := range certs {
		if sn, _ := serial.FromBig(c.x509.SerialNumber); !listed[sn] {
			t.Errorf("final CRL #%v lacks %s (or its reason)", crl.Number, sn)
		}
	}
}

func TestRevocation_TwoReplicas_ExactlyOneGeneratesAndBothServe(t *testing.T) {
	ca := hsmCA(t, "replicas")
	stores := modelstest.Replicas(t, 2)
	storeA, storeB := stores[0], stores[1]
	a := startRevocation(t, storeA, ca, nil)
	b := startRevocation(t, storeB, ca, nil)
	a.waitReady()
	b.waitReady()

	countRows := func(model any, where string, args ...any) int64 {
		var n int64
		if err := storeA.DB().Model(model).Where(where, args...).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	names := a.h.CRLNames()
	if got := a.h.Generated() + b.h.Generated(); got != int64(len(names)) {
		t.Errorf("the replicas generated %d CRLs at start (A %d, B %d), want %d: one of each (%v)",
			got, a.h.Generated(), b.h.Generated(), len(names), names)
	}
	for _, issuer := range names {
		if n := countRows(&models.CRL{}, "issuer = ?", issuer); n != 1 {
			t.Errorf("%d %s CRLs stored, want 1", n, issuer)
		}
		if a.crlNumber(issuer) != b.crlNumber(issuer) {
			t.Errorf("replicas serve different %s CRLs: %d and %d", issuer, a.crlNumber(issuer), b.crlNumber(issuer))
		}
	}
	if n := countRows(&models.OCSPResponder{}, "1 = 1"); n != 1 {
		t.Errorf("%d OCSP responders made, want 1 for both replicas", n)
	}
	if sa, sb := a.h.Status().OCSP, b.h.Status().OCSP; sa.Serial != sb.Serial {
		t.Errorf("replicas sign OCSP with different responders: %s and %s", sa.Serial, sb.Serial)
	}

	c := a.issue("billing")
	before := b.crlNumber(revocation.CRLIssuing)
	genB := b.h.Generated()
	a.revoke(c, models.ReasonKeyCompromise)
	took := b.waitFor("replica B to serve A's new CRL", 3*time.Second, func() bool { return b.crlNumber(revocation.CRLIssuing) > before })
	t.Logf("replica B served the CRL %v after A's revoke", took)
	if b.h.Generated() != genB {
		t.Errorf("replica B generated a CRL for A's revocation; only A should")
	}
	if n := countRows(&models.CRL{}, "issuer = ?", revocation.CRLIssuing); n != 2 {
		t.Errorf("%d issuing CRLs stored after one revocation, want 2", n)
	}
	if entries := b.servedCRL().RevokedCertificateEntries; len(entries) != 1 || entries[0].SerialNumber.Cmp(c.x509.SerialNumber) != 0 {
		t.Errorf("replica B's CRL lists %d entries, want the revoked certificate", len(entries))
	}
	// B learns of the revocation for OCSP too.
	req, err := ocsp.CreateRequest(c.x509, ca.CA.Issuer.Certificate(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b.waitFor("replica B to answer revoked", 3*time.Second, func() bool {
		resp, body := b.get("/ocsp/"+encodeGET(req), nil)
		r, err := ocsp.ParseResponseForCert(body, nil, ca.CA.Issuer.Certificate())
		return resp.StatusCode == 200 && err == nil && r.Status == ocsp.Revoked
	})
}

// encodeGET is the path form of an OCSP GET request (RFC 6960 Appendix A.1).
func encodeGET(der []byte) string {
	return url.PathEscape(base64.StdEncoding.EncodeToString(der))
}

// A replica that made a full CRL makes its delta at once, but not when
// another replica made a delta above it in the meantime: in the same second
// (thisUpdate has whole seconds), so the two are told apart by number.
func TestRevocation_DeltaOnNewFullCRL_MadeOnceAcrossReplicas(t *testing.T) {
	ca := hsmCA(t, "delta-once")
	stores := modelstest.Replicas(t, 2)
	clk := modelstest.NewClock(time.Now())
	service := func(s *models.Store) *revocation.Service {
		h, err := revocation.New(revocation.Config{Store: s, CA: ca.CA, IssuingKey: ca.Config.IssuingKey, CADir: ca.Config.Dir,
			PKIURL: "http://127.0.0.1", Log: testLogs, PollInterval: 200 * time.Millisecond, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	a, b := service(stores[0]), service(stores[1])
	deltas := func() []int64 { // the stored deltas' numbers
		var numbers []int64
		if err := stores[0].DB().Model(&models.CRL{}).Where("issuer = ?", revocation.CRLDelta).Order("number").Pluck("number", &numbers).Error; err != nil {
			t.Fatal(err)
		}
		return numbers
	}

	full, err := a.GenerateCRL(bg, revocation.CRLIssuing)
	if err != nil {
		t.Fatal(err)
	}
	// B's tick sees no delta and makes one on A's full CRL first.
	if err := b.EnsureCRL(bg, revocation.CRLDelta); err != nil {
		t.Fatal(err)
	}
	a.DeltaOnFull(bg, full)
	if got := deltas(); len(got) != 1 || got[0] <= full.Number {
		t.Fatalf("deltas after B made one above full CRL #%d: %v, want exactly B's", full.Number, got)
	}

	// A delta not above the new full CRL is replaced by one that is.
	full, err = a.GenerateCRL(bg, revocation.CRLIssuing)
	if err != nil {
		t.Fatal(err)
	}
	a.DeltaOnFull(bg, full)
	got := deltas()
	if len(got) != 2 || got[1] <= full.Number {
		t.Fatalf("deltas after full CRL #%d: %v, want a second one above it", full.Number, got)
	}
	if b.DeltaOnFull(bg, full); len(deltas()) != 2 {
		t.Errorf("a delta above the full CRL was made again")
	}
}
