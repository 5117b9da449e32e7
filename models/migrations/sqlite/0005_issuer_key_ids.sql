-- certdesk schema, version 5 (SQLite): which CA key signed each CRL and
-- certified each OCSP responder. key_id is the hex SHA-256 of the CA
-- certificate's SubjectPublicKeyInfo (as in audit_checkpoints), so that after
-- the issuing CA is replaced, and while replicas of the old and the new one
-- run side by side, each serves its own CRL and responder. Rows from before
-- this version have an empty key_id: a replica regenerates its CRL and makes
-- a new responder rather than serve one it cannot attribute.
ALTER TABLE crls ADD COLUMN key_id VARCHAR(64) NOT NULL DEFAULT '';
CREATE INDEX idx_crls_issuer_key_number ON crls (issuer, key_id, number);
ALTER TABLE ocsp_responders ADD COLUMN key_id VARCHAR(64) NOT NULL DEFAULT '';
CREATE INDEX idx_ocsp_responders_issuer_key ON ocsp_responders (issuer, key_id, not_after);
