package signer

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certdesk/certdesk/signer/serial"
)

// CRLSigner signs certificate revocation lists for one CA (RFC 5280 §5)
// with lint-before-sign: every CRL is first built with a throwaway key of
// the same algorithm and an issuer copy holding its public key, linted with
// zlint's CRL lints, and only then signed by the CA key (in the token). It is
// safe for concurrent use.
type CRLSigner struct {
	cert   *x509.Certificate
	signer crypto.Signer
	linter *Linter

	lintSigner crypto.Signer
	lintParent *x509.Certificate
}

// NewCRLSigner returns a CRL signer for the CA certificate cert and its key.
// The certificate must assert cRLSign (RFC 5280 §4.2.1.3) and carry a subject
// key identifier, which becomes the CRL's authority key identifier
// (§5.2.1). A nil linter gets a new one.
func NewCRLSigner(cert *x509.Certificate, key crypto.Signer, linter *Linter) (*CRLSigner, error) {
	if cert == nil || key == nil {
		return nil, errors.New("CRL signer: certificate and key are required")
	}
	if cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, fmt.Errorf("CA certificate %q lacks the cRLSign key usage (RFC 5280 §4.2.1.3)", cert.Subject)
	}
	if len(cert.SubjectKeyId) == 0 {
		return nil, fmt.Errorf("CA certificate %q has no subject key identifier for the CRL's AKI (RFC 5280 §5.2.1)", cert.Subject)
	}
	lintSigner, err := throwawayKey(key.Public())
	if err != nil {
		return nil, err
	}
	if linter == nil {
		if linter, err = NewLinter(); err != nil {
			return nil, err
		}
	}
	lintParent := *cert
	lintParent.PublicKey = lintSigner.Public()
	return &CRLSigner{cert: cert, signer: key, linter: linter, lintSigner: lintSigner, lintParent: &lintParent}, nil
}

// CRLSigner returns the issuing CA's CRL signer; it reuses the issuer's
// throwaway lint key and linter.
func (i *Issuer) CRLSigner() (*CRLSigner, error) {
	if i.cert.KeyUsage&x509.KeyUsageCRLSign == 0 || len(i.cert.SubjectKeyId) == 0 {
		return NewCRLSigner(i.cert, i.signer, i.linter) // returns the precise error
	}
	return &CRLSigner{cert: i.cert, signer: i.signer, linter: i.linter, lintSigner: i.lintSigner, lintParent: i.lintParent}, nil
}

// Certificate is the CA certificate whose CRLs this signer makes.
func (s *CRLSigner) Certificate() *x509.Certificate { return s.cert }

// RevokedCert is one entry of a CRL.
type RevokedCert struct {
	Serial    serial.Number
	RevokedAt time.Time
	// Reason is the RFC 5280 §5.3.1 CRLReason code. unspecified (0) is left
	// out of the entry, as §5.3.1 asks.
	Reason int
}

// CRLTemplate is what a CRL says.
type CRLTemplate struct {
	// Number is the CRL number (RFC 5280 §5.2.3); the caller keeps it
	// monotonic.
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	// Entries are the revoked certificates, for Sign; a CRLBuilder takes
	// them one at a time instead.
	Entries []RevokedCert
	// Scope, when set, makes the CRL a partition: an issuing distribution
	// point extension (RFC 5280 §5.2.5) names it, and a certificate's CRL
	// distribution point must be exactly this URL.
	Scope string
	// DeltaBase, when positive, makes the CRL a delta CRL (RFC 5280 §5.2.4):
	// the number of the complete CRL it updates, in a deltaCRLIndicator.
	DeltaBase int64
	// FreshestCRL, when set, is the URL of the delta CRLs of a complete CRL
	// (RFC 5280 §5.2.6).
	FreshestCRL string
}

// Sign builds, lints and signs a CRL with t.Entries and returns its DER.
func (s *CRLSigner) Sign(t CRLTemplate) ([]byte, error) {
	b, err := s.NewBuilder(t)
	if err != nil {
		return nil, err
	}
	for _, e := range t.Entries {
		if err := b.Add(e); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// CRLBuilder makes one CRL whose entries arrive one at a time, e.g. in
// batches from the database: each entry is encoded as it comes (crl_der.go)
// and only the encoded bytes are kept, so a CRL of a million entries needs
// tens of megabytes, not gigabytes. Finish lints, then signs.
//
// What is linted. Before the CA key signs, a twin of the CRL is built with
// x509.CreateRevocationList and the throwaway key and linted with zlint, as
// for every signature. The twin has exactly the CRL's version, signature
// algorithm, issuer, thisUpdate, nextUpdate and extensions (the signed TBS
// reuses those very bytes), and as entries a representative sample: the
// first and the last, the earliest and the latest revocation date, and the
// first of each reason code. That suffices because zlint v3's CRL lints
// judge each entry on its own — its reason code (valid, not critical), its
// revocation date (not after thisUpdate, not too early), its extensions (no
// duplicates) — so an entry the sample stands for fails exactly when its
// representative does; the sample holds every reason code and both extreme
// dates, which are the only values those lints read. The one lint across
// entries, unique serials, holds by construction: the store keeps serials
// unique and in one canonical form, and Add refuses an entry equal to the
// one before it. Add also encodes each
// sample entry as the standard library did in the twin, and Finish refuses
// to sign if the bytes differ, so the hand-written encoding is checked on
// every CRL.
type CRLBuilder struct {
	s      *CRLSigner
	tmpl   *x509.RevocationList
	number int64

	body []byte // the encoded revokedCertificates elements
	n    int
	// The lint sample: the first entry of each reason code, and the
	// first, last, earliest and latest entries, each with its index.
	firstOf               [11]*indexedEntry
	first, last, min, max indexedEntry
	done                  bool
}

// NewBuilder starts a CRL with t's number, times and scope (t.Entries is
// ignored: Add the entries).
func (s *CRLSigner) NewBuilder(t CRLTemplate) (*CRLBuilder, error) {
	tmpl, err := s.template(t)
	if err != nil {
		return nil, err
	}
	return &CRLBuilder{s: s, tmpl: tmpl, number: t.Number}, nil
}

// Grow makes room for about n more entries.
func (b *CRLBuilder) Grow(n int) {
	if n > 0 {
		b.body = slices.Grow(b.body, n*48)
	}
}

// Len is the number of entries added.
func (b *CRLBuilder) Len() int { return b.n }

// Add appends one revoked certificate. Revocation times are taken in UTC
// and whole seconds, as they are encoded (RFC 5280 §5.1.2.6).
func (b *CRLBuilder) Add(e RevokedCert) error {
	if b.done {
		return errors.New("CRL builder: already finished")
	}
	at := e.RevokedAt.UTC().Truncate(time.Second)
	if e.Serial.IsZero() {
		return fmt.Errorf("CRL entry %d has no positive serial", b.n)
	}
	if b.n > 0 && e.Serial == b.last.Serial {
		return fmt.Errorf("CRL entry %d repeats serial %s", b.n, e.Serial)
	}
	if at.IsZero() {
		return fmt.Errorf("CRL entry %s has no revocation date", e.Serial)
	}
	var err error
	if b.body, err = appendEntry(b.body, e.Serial, at, e.Reason); err != nil {
		return err
	}
	e.RevokedAt = at
	cur := indexedEntry{b.n, e}
	if b.n == 0 {
		b.first, b.min, b.max = cur, cur, cur
	}
	if at.Before(b.min.RevokedAt) {
		b.min = cur
	}
	if at.After(b.max.RevokedAt) {
		b.max = cur
	}
	if b.firstOf[e.Reason] == nil {
		b.firstOf[e.Reason] = &cur
	}
	b.last = cur
	b.n++
	return nil
}

// indexedEntry is an entry and its place in the CRL.
type indexedEntry struct {
	i int
	RevokedCert
}

// lintSample is the sample of entries to lint, in entry order.
func (b *CRLBuilder) lintSample() []RevokedCert {
	byIndex := map[int]RevokedCert{}
	for _, e := range []indexedEntry{b.first, b.last, b.min, b.max} {
		byIndex[e.i] = e.RevokedCert
	}
	for _, e := range b.firstOf {
		if e != nil {
			byIndex[e.i] = e.RevokedCert
		}
	}
	idx := make([]int, 0, len(byIndex))
	for i := range byIndex {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	out := make([]RevokedCert, 0, len(idx))
	for _, i := range idx {
		out = append(out, byIndex[i])
	}
	return out
}

// Finish lints the CRL's twin, signs the TBS with the CA key and returns
// the CRL's DER. The signature is verified before the CRL is returned.
func (b *CRLBuilder) Finish() ([]byte, error) {
	if b.done {
		return nil, errors.New("CRL builder: already finished")
	}
	b.done = true
	s, num := b.s, b.number
	var sample []RevokedCert
	if b.n > 0 {
		sample = b.lintSample()
	}
	lintTmpl := *b.tmpl
	lintTmpl.RevokedCertificateEntries = make([]x509.RevocationListEntry, len(sample))
	var sampleDER []byte
	for i, e := range sample {
		lintTmpl.RevokedCertificateEntries[i] = x509.RevocationListEntry{SerialNumber: e.Serial.Big(), RevocationTime: e.RevokedAt, ReasonCode: e.Reason}
		var err error
		if sampleDER, err = appendEntry(sampleDER, e.Serial, e.RevokedAt, e.Reason); err != nil {
			return nil, err
		}
	}
	lintDER, err := x509.CreateRevocationList(rand.Reader, &lintTmpl, s.lintParent, s.lintSigner)
	if err != nil {
		return nil, fmt.Errorf("building CRL #%d: %w", num, err)
	}
	if err := s.linter.LintCRL(lintDER); err != nil {
		return nil, fmt.Errorf("CRL #%d of %q: %w", num, s.cert.Subject.CommonName, err)
	}
	lint, err := splitCRL(lintDER)
	if err != nil {
		return nil, fmt.Errorf("reading the lint CRL: %w", err)
	}
	if !bytes.Equal(lint.entries, sampleDER) {
		return nil, fmt.Errorf("%w: the CRL entries encode differently from the standard library's", ErrLint)
	}
	alg, hash, opts, err := crlSignatureParams(lintDER)
	if err != nil {
		return nil, err
	}

	// TBSCertList (RFC 5280 §5.1): the linted fields around the full list.
	var revoked []byte // header of revokedCertificates; absent when empty (§5.1.2.6)
	if b.n > 0 {
		revoked = appendLength([]byte{tagSequence}, len(b.body))
	}
	tbsLen := len(lint.prefix) + len(revoked) + len(b.body) + len(lint.exts)
	tbsHdr := appendLength([]byte{tagSequence}, tbsLen)

	var digest []byte
	if hash != 0 {
		h := hash.New()
		for _, p := range [][]byte{tbsHdr, lint.prefix, revoked, b.body, lint.exts} {
			h.Write(p)
		}
		digest = h.Sum(nil)
	}
	tbsFull := len(tbsHdr) + tbsLen
	var sig []byte
	if hash == 0 { // Ed25519 signs the message itself
		tbs := make([]byte, 0, tbsFull)
		for _, p := range [][]byte{tbsHdr, lint.prefix, revoked, b.body, lint.exts} {
			tbs = append(tbs, p...)
		}
		sig, err = s.signer.Sign(rand.Reader, tbs, opts)
	} else {
		sig, err = s.signer.Sign(rand.Reader, digest, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("signing CRL #%d: %w", num, err)
	}

	// CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }
	bitLen := 1 + len(sig)
	outLen := tbsFull + len(lint.sigAlg) + 1 + lengthSize(bitLen) + bitLen
	out := make([]byte, 0, 1+lengthSize(outLen)+outLen)
	out = append(out, tagSequence)
	out = appendLength(out, outLen)
	tbsStart := len(out)
	for _, p := range [][]byte{tbsHdr, lint.prefix, revoked, b.body, lint.exts} {
		out = append(out, p...)
	}
	tbsEnd := len(out)
	b.body = nil // let the entries be collected
	out = append(out, lint.sigAlg...)
	out = append(out, 0x03)
	out = appendLength(out, bitLen)
	out = append(out, 0)
	out = append(out, sig...)
	if err := s.cert.CheckSignature(alg, out[tbsStart:tbsEnd], sig); err != nil {
		return nil, fmt.Errorf("the CA key produced a CRL that does not verify: %w", err)
	}
	return out, nil
}

// crlParts are the raw pieces of a DER CRL.
type crlParts struct {
	prefix  []byte // TBS version, signature, issuer, thisUpdate, nextUpdate
	entries []byte // contents of revokedCertificates (nil when absent)
	exts    []byte // TBS [0] crlExtensions, whole element
	sigAlg  []byte // outer signatureAlgorithm, whole element
}

// splitCRL cuts a DER CRL made by x509.CreateRevocationList into its parts.
func splitCRL(der []byte) (*crlParts, error) {
	in := cryptobyte.String(der)
	var list, tbs cryptobyte.String
	if !in.ReadASN1(&list, cbasn1.SEQUENCE) || !in.Empty() || !list.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed CRL")
	}
	var p crlParts
	rest := tbs
	for i := 0; i < 5; i++ { // version, signature, issuer, thisUpdate, nextUpdate
		var el cryptobyte.String
		if !rest.ReadAnyASN1Element(&el, nil) {
			return nil, errors.New("malformed TBSCertList")
		}
	}
	p.prefix = tbs[:len(tbs)-len(rest)]
	if rest.PeekASN1Tag(cbasn1.SEQUENCE) {
		var entries cryptobyte.String
		if !rest.ReadASN1(&entries, cbasn1.SEQUENCE) {
			return nil, errors.New("malformed revokedCertificates")
		}
		p.entries = entries
	}
	var exts cryptobyte.String
	if !rest.ReadAnyASN1Element(&exts, nil) || !rest.Empty() {
		return nil, errors.New("malformed crlExtensions")
	}
	p.exts = exts
	var alg cryptobyte.String
	if !list.ReadAnyASN1Element(&alg, nil) {
		return nil, errors.New("malformed signatureAlgorithm")
	}
	p.sigAlg = alg
	return &p, nil
}

// crlSignatureParams is how the CA key signs a CRL: the algorithm the
// standard library chose for the throwaway key of the same kind, and the
// hash and options crypto.Signer wants for it.
func crlSignatureParams(lintDER []byte) (x509.SignatureAlgorithm, crypto.Hash, crypto.SignerOpts, error) {
	l, err := x509.ParseRevocationList(lintDER)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("parsing the lint CRL: %w", err)
	}
	alg := l.SignatureAlgorithm
	switch alg {
	case x509.ECDSAWithSHA256, x509.SHA256WithRSA:
		return alg, crypto.SHA256, crypto.SHA256, nil
	case x509.ECDSAWithSHA384, x509.SHA384WithRSA:
		return alg, crypto.SHA384, crypto.SHA384, nil
	case x509.ECDSAWithSHA512, x509.SHA512WithRSA:
		return alg, crypto.SHA512, crypto.SHA512, nil
	case x509.SHA256WithRSAPSS:
		return alg, crypto.SHA256, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}, nil
	case x509.SHA384WithRSAPSS:
		return alg, crypto.SHA384, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA384}, nil
	case x509.SHA512WithRSAPSS:
		return alg, crypto.SHA512, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA512}, nil
	case x509.PureEd25519:
		return alg, 0, crypto.Hash(0), nil
	}
	return 0, 0, nil, fmt.Errorf("CRL signature algorithm %v is not supported", alg)
}

// OIDs of the CRL extensions for partitions and deltas (RFC 5280 §5.2).
var (
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidDeltaCRLIndicator        = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidFreshestCRL              = asn1.ObjectIdentifier{2, 5, 29, 46}
)

// distributionPointName is a DistributionPointName with one fullName URI,
// [0] { [0] { [6] uri } }, encoded exactly as crypto/x509 encodes a
// certificate's CRL distribution point (RFC 5280 §4.2.1.13), so that a
// relying party comparing the two (OpenSSL's CRL scope check) finds them
// equal.
func distributionPointName(b *cryptobyte.Builder, uri string) {
	b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(uri)) })
		})
	})
}

// scopeExtensions are the extensions of t beyond AKI and CRL number.
func scopeExtensions(t CRLTemplate) ([]pkix.Extension, error) {
	var exts []pkix.Extension
	if t.Scope != "" {
		// RFC 5280 §5.2.5: critical; a partition of end-entity certificates.
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			distributionPointName(b, t.Scope)
			b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
		})
		v, err := b.Bytes()
		if err != nil {
			return nil, err
		}
		exts = append(exts, pkix.Extension{Id: oidIssuingDistributionPoint, Critical: true, Value: v})
	}
	if t.DeltaBase > 0 {
		if t.DeltaBase >= t.Number {
			return nil, fmt.Errorf("delta CRL #%d: its base #%d must be older (RFC 5280 §5.2.4)", t.Number, t.DeltaBase)
		}
		v, err := asn1.Marshal(big.NewInt(t.DeltaBase))
		if err != nil {
			return nil, err
		}
		exts = append(exts, pkix.Extension{Id: oidDeltaCRLIndicator, Critical: true, Value: v})
	}
	if t.FreshestCRL != "" {
		if t.DeltaBase > 0 {
			return nil, errors.New("a delta CRL carries no freshest CRL extension (RFC 5280 §5.2.6)")
		}
		ext, err := freshestCRLExtension(t.FreshestCRL)
		if err != nil {
			return nil, err
		}
		exts = append(exts, ext)
	}
	return exts, nil
}

// freshestCRLExtension is the non-critical freshest CRL extension naming
// uri, with the CRLDistributionPoints syntax (RFC 5280 §4.2.1.15, §5.2.6).
func freshestCRLExtension(uri string) (pkix.Extension, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { distributionPointName(b, uri) })
	})
	v, err := b.Bytes()
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidFreshestCRL, Value: v}, nil
}

// template converts t, without its entries, into the standard library's
// form. Times are UTC and whole seconds, as they are encoded (RFC 5280
// §5.1.2.4).
func (s *CRLSigner) template(t CRLTemplate) (*x509.RevocationList, error) {
	if t.Number <= 0 {
		return nil, fmt.Errorf("CRL number must be positive, got %d", t.Number)
	}
	this := t.ThisUpdate.UTC().Truncate(time.Second)
	next := t.NextUpdate.UTC().Truncate(time.Second)
	if !next.After(this) {
		return nil, errors.New("CRL nextUpdate must follow thisUpdate (RFC 5280 §5.1.2.5)")
	}
	exts, err := scopeExtensions(t)
	if err != nil {
		return nil, err
	}
	return &x509.RevocationList{
		Number:          big.NewInt(t.Number),
		ThisUpdate:      this,
		NextUpdate:      next,
		ExtraExtensions: exts,
	}, nil
}
