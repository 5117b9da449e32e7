package revocation

import (
	"crypto"
	"math/big"
	"testing"
	"time"

	"github.com/certdesk/certdesk/signer/serial"
)

// TestOCSPState_UnknownAnswersAreBounded: made-up serials cannot grow the
// cache of "unknown" answers past ocspUnknownMax; expired ones make room.
func TestOCSPState_UnknownAnswersAreBounded(t *testing.T) {
	var s ocspState
	s.init()
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	answer := func() *ocspAnswer {
		return &ocspAnswer{thisUpdate: t0, nextUpdate: t0.Add(24 * time.Hour), expires: t0.Add(ocspUnknownTTL)}
	}
	key := func(i int) ocspKey {
		sn, err := serial.FromBig(big.NewInt(int64(0x5eed0000 + i)))
		if err != nil {
			t.Fatal(err)
		}
		return ocspKey{serial: sn, hash: crypto.SHA1}
	}
	for i := 0; i < ocspUnknownMax+500; i++ {
		s.putUnknown(key(i), answer(), t0)
	}
	if n := len(s.unknown); n != ocspUnknownMax {
		t.Fatalf("%d unknown answers kept, want the cap %d", n, ocspUnknownMax)
	}
	if s.get(key(0), t0) == nil || s.get(key(ocspUnknownMax), t0) != nil {
		t.Fatal("want the first answers kept and the ones past the cap dropped")
	}
	if s.get(key(0), t0.Add(ocspUnknownTTL)) != nil {
		t.Fatal("an unknown answer is served after its minute")
	}
	later := t0.Add(2 * ocspUnknownTTL)
	s.putUnknown(key(-1), answer(), later)
	if n := len(s.unknown); n != 1 || s.unknown[key(-1)] == nil {
		t.Fatalf("after expiry %d unknown answers kept, want only the new one", n)
	}
	// An issued certificate's answer replaces an unknown one for its serial.
	s.put(key(-1), answer())
	if len(s.unknown) != 0 || s.answers[key(-1)] == nil {
		t.Fatal("put did not move the serial out of the unknown answers")
	}
}
