package handlers_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/certdesk/certdesk/handlers"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer/crlreason"
)

func TestRevocationReasons_ListsTheTableWithCodesAndRoles(t *testing.T) {
	for _, a := range []models.Actor{partnerActor, adminActor, auditorActor} {
		t.Run(a.Role, func(t *testing.T) {
			rec := call(t, handlers.RevocationReasons, a, "GET", "")
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var got struct {
				Items []crlreason.Reason `json:"items"`
			}
			decode(t, rec, &got)
			if want := crlreason.All(); !slices.EqualFunc(got.Items, want, func(a, b crlreason.Reason) bool {
				return a.Name == b.Name && a.Code == b.Code && a.Label == b.Label && slices.Equal(a.Roles, b.Roles)
			}) {
				t.Fatalf("items %+v, want %+v", got.Items, want)
			}
			byName := map[string]crlreason.Reason{}
			for _, r := range got.Items {
				byName[r.Name] = r
			}
			if r := byName["keyCompromise"]; r.Code != 1 || !r.MayUse(models.RolePartner) || !r.MayUse(models.RoleAdmin) {
				t.Fatalf("keyCompromise: %+v", r)
			}
			if r := byName["cACompromise"]; r.Code != 2 || r.MayUse(models.RolePartner) || !r.MayUse(models.RoleAdmin) {
				t.Fatalf("cACompromise: %+v", r)
			}
			if _, ok := byName["certificateHold"]; ok {
				t.Fatal("certificateHold is listed")
			}
		})
	}
}

func TestRevocationRoles_AreTheModelsRoles(t *testing.T) {
	if crlreason.RolePartner != models.RolePartner || crlreason.RoleAdmin != models.RoleAdmin {
		t.Fatalf("crlreason roles %q/%q, models roles %q/%q", crlreason.RolePartner, crlreason.RoleAdmin, models.RolePartner, models.RoleAdmin)
	}
}

// TestOpenAPI_DescribesTheSameReasonsAndTokenCap keeps the document's
// enumerations true to the one definition of each rule.
func TestOpenAPI_DescribesTheSameReasonsAndTokenCap(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				RevocationReason struct {
					Enum []string `json:"enum"`
				} `json:"RevocationReason"`
				TokenBody struct {
					Properties struct {
						TTLDays struct {
							Maximum int `json:"maximum"`
						} `json:"ttl_days"`
					} `json:"properties"`
				} `json:"TokenBody"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(handlers.OpenAPISpec(), &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range crlreason.All() {
		names = append(names, r.Name)
	}
	got := slices.Sorted(slices.Values(doc.Components.Schemas.RevocationReason.Enum))
	if slices.Sort(names); !slices.Equal(got, names) {
		t.Errorf("RevocationReason enum %v, want %v", got, names)
	}
	if m := doc.Components.Schemas.TokenBody.Properties.TTLDays.Maximum; m != models.MaxTokenLifetimeDays {
		t.Errorf("TokenBody.ttl_days maximum %d, want %d", m, models.MaxTokenLifetimeDays)
	}
}
