package models_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func TestSubmitRequest_OneKeyTwoOrgsConcurrently_OneOrgHoldsIt(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		newOrg(t, s, "acme", false)
		newOrg(t, s, "globex", false)
		const n = 24
		key := fmt.Sprintf("%064x", 0xbad5eed)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			won   = map[string]int{}
			owned = map[string]int{}
			other []error
			start = make(chan struct{})
		)
		for i := 0; i < n; i++ {
			org := []string{"acme", "globex"}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := models.Actor{Subject: "partner-of-" + org, Role: models.RolePartner, Org: org, Source: "192.0.2.9"}
				r := &models.Request{Org: org, CSRPEM: "pem", KeyType: "ECDSA P-256", KeySHA256: key,
					Identities: models.StringList{"spiffe://example.org/partners/" + org + "/svc"}, ValidityDays: 30}
				<-start
				err := s.SubmitRequest(ctx, a, r)
				var ko *models.KeyOwnedError
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won[org]++
				case errors.As(err, &ko) && errors.Is(err, models.ErrConflict) && ko.Org != org:
					owned[org]++
				default:
					other = append(other, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("unexpected errors: %v", other)
		}
		if len(won) != 1 {
			t.Fatalf("submissions that got through, by organisation: %v; want one organisation only", won)
		}
		for org, k := range won {
			if k != n/2 || owned[org] != 0 {
				t.Fatalf("the holder %s got %d of its %d submissions through (%d refused)", org, k, n/2, owned[org])
			}
		}
		var orgs []string
		err := s.DB().Model(&models.Request{}).Distinct("org").Where("key_sha256 = ?", key).Pluck("org", &orgs).Error
		if err != nil || len(orgs) != 1 {
			t.Fatalf("organisations of the key: %v (err %v), want exactly one", orgs, err)
		}
		mustVerify(t, s)
	})
}
