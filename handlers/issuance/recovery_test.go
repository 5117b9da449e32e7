package issuance_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

// countingIssuer counts the HSM signatures it makes, per serial.
type countingIssuer struct {
	issuance.Issuer
	mu      sync.Mutex
	signed  map[string]int
	failing bool
}

func (c *countingIssuer) Issue(p *signer.Prepared) ([]byte, error) {
	c.mu.Lock()
	failing := c.failing
	c.mu.Unlock()
	if failing {
		return nil, errors.New("HSM unavailable")
	}
	der, err := c.Issuer.Issue(p)
	if err == nil {
		c.mu.Lock()
		c.signed[p.Serial.String()]++
		c.mu.Unlock()
	}
	return der, err
}

func (c *countingIssuer) setFailing(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failing = v
}

func (c *countingIssuer) twice() (serials int, twice []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s, n := range c.signed {
		if n != 1 {
			twice = append(twice, s)
		}
	}
	return len(c.signed), twice
}

func counting(e *env) *countingIssuer {
	c := &countingIssuer{Issuer: e.wf.Issuer, signed: map[string]int{}}
	e.wf.Issuer = c
	return c
}

// TestRecover_RacingLiveApprovals_SignsEachSerialOnce drives recovery in a
// tight loop against concurrent live approvals: recovery never takes a
// certificate that a live approval holds, so every serial is signed once and
// every approval succeeds.
func TestRecover_RacingLiveApprovals_SignsEachSerialOnce(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		hsm := counting(e)
		const n = 24
		ids := make(chan string, n)
		for i := range n {
			ids <- e.submit("svc" + string(rune('a'+i))).ID
		}
		close(ids)
		done := make(chan struct{})
		var recoverErrs []error
		var recovering sync.WaitGroup
		recovering.Add(1)
		go func() {
			defer recovering.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, _, err := e.wf.Recover(bg); err != nil {
					recoverErrs = append(recoverErrs, err)
				}
			}
		}()
		var approving sync.WaitGroup
		var mu sync.Mutex
		var approveErrs []error
		for range 4 {
			approving.Add(1)
			go func() {
				defer approving.Done()
				for id := range ids {
					if _, err := e.wf.Approve(bg, admin, id, "ok"); err != nil {
						mu.Lock()
						approveErrs = append(approveErrs, err)
						mu.Unlock()
					}
				}
			}()
		}
		approving.Wait()
		close(done)
		recovering.Wait()
		if len(approveErrs) > 0 {
			t.Fatalf("%d live approvals failed, first: %v", len(approveErrs), approveErrs[0])
		}
		if len(recoverErrs) > 0 {
			t.Fatalf("recovery failed %d times, first: %v", len(recoverErrs), recoverErrs[0])
		}
		serials, twice := hsm.twice()
		if serials != n || len(twice) > 0 {
			t.Fatalf("the HSM signed %d serials for %d requests; signed more than once: %v", serials, n, twice)
		}
		t.Logf("%d approvals against a looping recovery: %d serials, each signed once", n, serials)
	})
}

// TestRecover_ExpiredLease_RecoveryFinishesAndTheOldHolderCannotSign: a
// pending certificate whose holder died is signed by recovery once its lease
// expired, exactly once; the old holder's claim no longer lets it sign.
func TestRecover_ExpiredLease_RecoveryFinishesAndTheOldHolderCannotSign(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clock := modelstest.NewClock(time.Now())
		s.Now = clock.Now
		e := newEnv(t, s)
		hsm := counting(e)
		hsm.setFailing(true)
		r := e.submit("flaky")
		if _, err := e.wf.Approve(bg, admin, r.ID, "ok"); !errors.Is(err, issuance.ErrHSMPending) {
			t.Fatalf("Approve with the HSM down: %v, want ErrHSMPending", err)
		}
		hsm.setFailing(false)
		pending, _, err := s.ListCertificates(bg, models.CertFilter{State: models.CertPending})
		if err != nil || len(pending) != 1 {
			t.Fatalf("pending certificates: %d, %v", len(pending), err)
		}
		if fin, failed, err := e.wf.Recover(bg); fin+failed != 0 || err != nil {
			t.Fatalf("Recover within the lease did %d/%d (%v), want nothing", fin, failed, err)
		}
		clock.Advance(models.IssuanceLease + time.Second)
		if fin, failed, err := e.wf.Recover(bg); fin != 1 || failed != 0 || err != nil {
			t.Fatalf("Recover after the lease: finished %d failed %d, %v", fin, failed, err)
		}
		if err := s.HoldClaim(bg, pending[0].ID, pending[0].ClaimedBy); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("the expired holder's claim: %v, want ErrConflict", err)
		}
		if serials, twice := hsm.twice(); serials != 1 || len(twice) > 0 {
			t.Fatalf("signed %d serials, twice: %v", serials, twice)
		}
		if got, _ := s.GetRequest(bg, r.ID); got.State != models.StateIssued {
			t.Fatalf("request is %s", got.State)
		}
	})
}

// TestRecover_StrandedApproval_IssuedOnceAfterTheGrace: an approval whose
// process died before it recorded a certificate is issued by recovery once
// the grace has passed, and only once.
func TestRecover_StrandedApproval_IssuedOnceAfterTheGrace(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clock := modelstest.NewClock(time.Now())
		s.Now = clock.Now
		e := newEnv(t, s)
		hsm := counting(e)
		r := e.submit("stranded")
		if _, err := s.ApproveRequest(bg, admin, r.ID, "ok"); err != nil {
			t.Fatal(err)
		}
		// The process dies here, before reserving.
		if fin, failed, err := e.wf.Recover(bg); fin+failed != 0 || err != nil {
			t.Fatalf("Recover within the grace did %d/%d (%v), want nothing", fin, failed, err)
		}
		clock.Advance(issuance.StrandedGrace + time.Second)
		if fin, failed, err := e.wf.Recover(bg); fin != 1 || failed != 0 || err != nil {
			t.Fatalf("Recover: finished %d failed %d, %v", fin, failed, err)
		}
		got, err := s.GetRequest(bg, r.ID)
		if err != nil || got.State != models.StateIssued || got.CertificateID == nil {
			t.Fatalf("stranded request after recovery: %+v, %v", got, err)
		}
		c, _ := s.GetCertificate(bg, *got.CertificateID)
		e.verify(c.DER)
		clock.Advance(time.Hour)
		if fin, failed, err := e.wf.Recover(bg); fin+failed != 0 || err != nil {
			t.Fatalf("a second Recover did %d/%d (%v)", fin, failed, err)
		}
		if serials, twice := hsm.twice(); serials != 1 || len(twice) > 0 {
			t.Fatalf("signed %d serials, twice: %v", serials, twice)
		}
	})
}

// TestRecover_StrandedApprovalPolicyNowRefuses_FailsVisiblyAndAdminRetries:
// a stranded approval that policy now refuses is not signed; it shows the
// reason, recovery leaves it alone, its requester cannot retry it, and an
// admin's retry issues it once policy allows it again.
func TestRecover_StrandedApprovalPolicyNowRefuses_FailsVisiblyAndAdminRetries(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clock := modelstest.NewClock(time.Now())
		s.Now = clock.Now
		e := newEnv(t, s)
		r := e.submit("moved")
		if _, err := s.ApproveRequest(bg, admin, r.ID, "ok"); err != nil {
			t.Fatal(err)
		}
		org, _ := s.GetOrg(bg, "acme")
		allowed := org.URIPrefixes
		org.URIPrefixes = models.StringList{"spiffe://example.org/partners/elsewhere/"}
		if err := s.UpdateOrg(bg, admin, org); err != nil {
			t.Fatal(err)
		}
		clock.Advance(issuance.StrandedGrace + time.Second)
		if fin, failed, err := e.wf.Recover(bg); fin != 0 || failed != 1 || err != nil {
			t.Fatalf("Recover: finished %d failed %d, %v; want one failure", fin, failed, err)
		}
		got, _ := s.GetRequest(bg, r.ID)
		if got.State != models.StateApproved || !strings.Contains(got.FailureReason, "namespace") {
			t.Fatalf("refused request: state %s, failure %q", got.State, got.FailureReason)
		}
		clock.Advance(time.Hour)
		if fin, failed, err := e.wf.Recover(bg); fin+failed != 0 || err != nil {
			t.Fatalf("Recover of a failed request did %d/%d (%v), want nothing", fin, failed, err)
		}
		if _, err := e.wf.Retry(bg, partner, r.ID); !errors.Is(err, models.ErrForbidden) {
			t.Fatalf("the requester's retry: %v, want ErrForbidden", err)
		}
		org.URIPrefixes = allowed
		if err := s.UpdateOrg(bg, admin, org); err != nil {
			t.Fatal(err)
		}
		issued, err := e.wf.Retry(bg, admin2, r.ID)
		if err != nil || issued.State != models.StateIssued || issued.FailureReason != "" {
			t.Fatalf("admin retry: %+v, %v", issued, err)
		}
		if _, err := e.wf.Retry(bg, admin2, r.ID); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("retrying an issued request: %v, want ErrConflict", err)
		}
		for _, action := range []string{"request.fail", "request.retry"} {
			if evs, _, err := s.ListAudit(bg, models.AuditFilter{Action: action}); err != nil || len(evs) != 1 {
				t.Fatalf("audit %s: %d events, %v", action, len(evs), err)
			}
		}
	})
}
