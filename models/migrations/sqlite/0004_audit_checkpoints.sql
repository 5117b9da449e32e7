-- certdesk schema, version 4 (SQLite): signed audit checkpoints.
-- A checkpoint is the audit chain head (seq, hash) signed by the issuing CA
-- key in the token. Whoever can rewrite audit_events and audit_heads cannot
-- forge the signature, so a rebuilt chain no longer matches a checkpoint.
-- key_id is the hex SHA-256 of the signer's SubjectPublicKeyInfo.
CREATE TABLE audit_checkpoints (
    id         INTEGER     PRIMARY KEY AUTOINCREMENT,
    seq        BIGINT      NOT NULL CHECK (seq > 0),
    hash       VARCHAR(64) NOT NULL,
    signed_at  DATETIME    NOT NULL,
    signature  BLOB        NOT NULL,
    key_id     VARCHAR(64) NOT NULL,
    created_at DATETIME    NOT NULL
);
CREATE UNIQUE INDEX idx_audit_checkpoints_seq ON audit_checkpoints (seq);
