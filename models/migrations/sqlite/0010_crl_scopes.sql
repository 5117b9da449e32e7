-- certdesk schema, version 10: which CA issued each certificate and which
-- CRL partition lists it when revoked. issuer_key_id is the hex SHA-256 of
-- the issuing CA certificate's SubjectPublicKeyInfo (as crls.key_id), so that
-- each issuing CA's CRLs and OCSP answers cover only its own certificates.
-- crl_partition is chosen from the serial at issuance and written into the
-- certificate's CRL distribution point (RFC 5280 §4.2.1.13,
-- /crl/issuing/<n>.crl), so it is recorded rather than recomputed: a change
-- of the partition count never moves an issued certificate. Rows from before
-- this version have an empty issuer_key_id (listed by every issuing CA's
-- full CRL, whose URL they carry) and partition -1 (in no partition).
ALTER TABLE certificates ADD COLUMN issuer_key_id VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN crl_partition INTEGER NOT NULL DEFAULT -1;
-- A partition and a delta CRL each read only their revoked rows: partial
-- indexes keep those reads proportional to what they list, however many
-- certificates were ever issued. (The full CRL reads every revoked row,
-- through idx_certificates_state.)
CREATE INDEX idx_certificates_revoked_partition ON certificates (crl_partition) WHERE state = 'revoked';
CREATE INDEX idx_certificates_revoked_at ON certificates (revoked_at) WHERE state = 'revoked';
