package est

import (
	"encoding/asn1"
	"errors"
)

// Object identifiers of RFC 5652.
var (
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
)

type encapContentInfo struct {
	ContentType asn1.ObjectIdentifier
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue
	SignerInfos      asn1.RawValue
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT, built by hand
}

// certsOnly is a degenerate CMS SignedData holding certificates and no
// signature: the "certs-only" PKCS#7 of RFC 7030 §4.1.3 and RFC 5652 §5.
func certsOnly(ders ...[]byte) ([]byte, error) {
	if len(ders) == 0 {
		return nil, errors.New("no certificates")
	}
	var certs []byte
	for _, d := range ders {
		certs = append(certs, d...)
	}
	emptySet := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true}
	sd, err := asn1.Marshal(signedData{
		Version:          1,
		DigestAlgorithms: emptySet,
		EncapContentInfo: encapContentInfo{ContentType: oidData},
		// certificates [0] IMPLICIT CertificateSet
		Certificates: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: certs},
		SignerInfos:  emptySet,
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfo{ContentType: oidSignedData, Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sd}})
}
