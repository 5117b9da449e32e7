package crlreason_test

import (
	"fmt"
	"testing"

	"github.com/certdesk/certdesk/signer/crlreason"
)

func TestByName_ByCode_AgreeOnEveryAcceptedReason(t *testing.T) {
	for _, r := range crlreason.All() {
		byName, ok := crlreason.ByName(r.Name)
		if !ok || byName.Code != r.Code {
			t.Errorf("ByName(%q) = %+v, %v", r.Name, byName, ok)
		}
		byCode, ok := crlreason.ByCode(r.Code)
		if !ok || byCode.Name != r.Name {
			t.Errorf("ByCode(%d) = %+v, %v", r.Code, byCode, ok)
		}
		if crlreason.Name(r.Code) != r.Name {
			t.Errorf("Name(%d) = %q", r.Code, crlreason.Name(r.Code))
		}
		if r.Label == "" {
			t.Errorf("%s has no label", r.Name)
		}
	}
}

func TestRefused_HoldRemoveUnusedAndUnknown(t *testing.T) {
	for _, code := range []int{crlreason.CertificateHold, crlreason.RemoveFromCRL, 7, 11, -1} {
		if r, ok := crlreason.ByCode(code); ok {
			t.Errorf("code %d accepted as %s", code, r.Name)
		}
		if got, want := crlreason.Name(code), fmt.Sprintf("reason(%d)", code); got != want {
			t.Errorf("Name(%d) = %q, want %q", code, got, want)
		}
	}
	for _, name := range []string{"certificateHold", "removeFromCRL", "KeyCompromise", ""} {
		if _, ok := crlreason.ByName(name); ok {
			t.Errorf("%q accepted", name)
		}
	}
}

func TestMayUse_PartnersFourReasons_AdminsAll_AuditorsNone(t *testing.T) {
	partner := map[string]bool{"keyCompromise": true, "superseded": true, "affiliationChanged": true, "cessationOfOperation": true}
	all := crlreason.All()
	if len(all) != 8 {
		t.Fatalf("%d reasons, want the 8 of RFC 5280 §5.3.1 without certificateHold and removeFromCRL", len(all))
	}
	for _, r := range all {
		if !r.MayUse(crlreason.RoleAdmin) {
			t.Errorf("an admin may not use %s", r.Name)
		}
		if r.MayUse(crlreason.RolePartner) != partner[r.Name] {
			t.Errorf("partner may use %s: %v, want %v", r.Name, r.MayUse(crlreason.RolePartner), partner[r.Name])
		}
		if r.MayUse("auditor") {
			t.Errorf("an auditor may use %s", r.Name)
		}
	}
}

func TestAll_ReturnsACopy(t *testing.T) {
	a := crlreason.All()
	a[0].Roles[0] = "auditor"
	a[0].Name = "changed"
	if b := crlreason.All(); b[0].Name == "changed" || b[0].Roles[0] == "auditor" {
		t.Fatalf("All shares its table: %+v", b[0])
	}
}
