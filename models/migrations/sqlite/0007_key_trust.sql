-- certdesk schema, version 6 (SQLite): keys and tokens that can be trusted.
-- blocked_keys lists public keys that are never certified again, in any
-- organisation, by the hex SHA-256 of their SubjectPublicKeyInfo: every
-- keyCompromise revocation adds its key, and administrators add keys
-- reported compromised elsewhere.
CREATE TABLE blocked_keys (
    key_sha256  VARCHAR(64)  PRIMARY KEY,
    key_type    VARCHAR(32)  NOT NULL DEFAULT '',
    source      VARCHAR(32)  NOT NULL,
    certificate_id VARCHAR(36),
    org         VARCHAR(64)  NOT NULL DEFAULT '',
    reason      TEXT         NOT NULL DEFAULT '',
    created_by  VARCHAR(255) NOT NULL,
    created_at  DATETIME NOT NULL
);
-- A request records the fingerprint of its CSR's key, so that a key is held
-- by one organisation only. Requests from before this version have an empty
-- fingerprint.
ALTER TABLE requests ADD COLUMN key_sha256 VARCHAR(64) NOT NULL DEFAULT '';
CREATE INDEX idx_requests_key_sha256 ON requests (key_sha256);
-- A token made with another token names its parent; it never outlives it
-- and dies with it.
ALTER TABLE api_tokens ADD COLUMN parent_id VARCHAR(36);
CREATE INDEX idx_api_tokens_parent_id ON api_tokens (parent_id);
