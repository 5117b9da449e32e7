package signer

import (
	"errors"
	"fmt"
	"time"

	"github.com/certdesk/certdesk/signer/serial"
)

// This file is the hand-written DER of a CRL's revokedCertificates (RFC 5280
// §5.1): the one part of a CRL that grows with the number of revoked
// certificates. encoding/asn1 (behind x509.CreateRevocationList) reflects
// over a struct per entry and allocates several objects for each; here an
// entry is appended to one growing byte slice with no allocation of its own.
// The encoding is byte-for-byte what x509.CreateRevocationList produces
// (TestCRLEncoder_MatchesCreateRevocationList), and CRLBuilder checks that
// again at run time on the entries it lints.

// DER tags used here (X.690 §8).
const (
	tagInteger         = 0x02
	tagOctetString     = 0x04
	tagOID             = 0x06
	tagEnumerated      = 0x0a
	tagUTCTime         = 0x17
	tagGeneralizedTime = 0x18
	tagSequence        = 0x30
)

// oidReasonCodeDER is the DER of the OID id-ce-cRLReasons, 2.5.29.21
// (RFC 5280 §5.3.1).
var oidReasonCodeDER = []byte{tagOID, 0x03, 0x55, 0x1d, 0x15}

// appendLength appends a DER definite length (X.690 §8.1.3).
func appendLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 0x100:
		return append(b, 0x81, byte(n))
	case n < 0x10000:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// lengthSize is the number of octets appendLength writes for n.
func lengthSize(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n < 0x100:
		return 2
	case n < 0x10000:
		return 3
	case n < 0x1000000:
		return 4
	default:
		return 5
	}
}

// hexNibble is the value of an upper-case hex digit (serial.Number.String).
func hexNibble(c byte) byte {
	if c >= 'A' {
		return c - 'A' + 10
	}
	return c - '0'
}

// derTimeLen is the length of the encoded Time value: UTCTime
// YYMMDDHHMMSSZ for 1950 to 2049, GeneralizedTime YYYYMMDDHHMMSSZ otherwise
// (RFC 5280 §5.1.2.4, §4.1.2.5).
func derTimeLen(t time.Time) int {
	if y := t.Year(); y >= 1950 && y < 2050 {
		return 13
	}
	return 15
}

// appendTime appends t (UTC, whole seconds) as RFC 5280 §4.1.2.5 asks.
func appendTime(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	two := func(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
	if y >= 1950 && y < 2050 {
		b = append(b, tagUTCTime, 13)
		b = two(b, y%100)
	} else {
		b = append(b, tagGeneralizedTime, 15)
		b = two(b, y/100)
		b = two(b, y%100)
	}
	b = two(b, int(mo))
	b = two(b, d)
	b = two(b, h)
	b = two(b, mi)
	b = two(b, s)
	return append(b, 'Z')
}

// errEntry is wrapped by every refusal of an entry.
var errEntry = errors.New("CRL entry")

// appendEntry appends one revokedCertificates element (RFC 5280 §5.1):
//
//	SEQUENCE { userCertificate INTEGER, revocationDate Time,
//	           crlEntryExtensions SEQUENCE { SEQUENCE { reasonCode OID, OCTET STRING { ENUMERATED } } } OPTIONAL }
//
// The reason code extension is left out for unspecified (0), as §5.3.1 asks
// and as x509.CreateRevocationList does; at must be UTC and whole seconds.
func appendEntry(b []byte, sn serial.Number, at time.Time, reason int) ([]byte, error) {
	hex := sn.String()
	if len(hex) < 2 || len(hex)%2 == 1 || hex == "00" {
		return b, fmt.Errorf("%w %d: no positive serial", errEntry, len(hex))
	}
	if reason < 0 || reason == 7 || reason > 10 {
		return b, fmt.Errorf("%w %s: %d is not an RFC 5280 §5.3.1 reason code", errEntry, hex, reason)
	}
	snLen := len(hex) / 2
	pad := hexNibble(hex[0]) >= 8 // a positive INTEGER whose first bit is set gets a 0x00 (X.690 §8.3.2)
	intLen := snLen
	if pad {
		intLen++
	}
	content := 1 + lengthSize(intLen) + intLen + 2 + derTimeLen(at)
	if reason != 0 {
		content += 2 + 2 + len(oidReasonCodeDER) + 2 + 3 // SEQUENCE{SEQUENCE{OID, OCTET STRING{ENUMERATED}}}
	}
	b = append(b, tagSequence)
	b = appendLength(b, content)
	b = append(b, tagInteger)
	b = appendLength(b, intLen)
	if pad {
		b = append(b, 0)
	}
	for i := 0; i < len(hex); i += 2 {
		b = append(b, hexNibble(hex[i])<<4|hexNibble(hex[i+1]))
	}
	b = appendTime(b, at)
	if reason != 0 {
		ext := len(oidReasonCodeDER) + 2 + 3
		b = append(b, tagSequence, byte(2+ext), tagSequence, byte(ext))
		b = append(b, oidReasonCodeDER...)
		b = append(b, tagOctetString, 3, tagEnumerated, 1, byte(reason))
	}
	return b, nil
}
