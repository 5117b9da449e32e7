-- certdesk schema, version 2 (SQLite): delegated OCSP responder
-- certificates. The key lives in the token under key_label; every
-- replica signs with the newest row of its issuer.
CREATE TABLE ocsp_responders (
    id         INTEGER      PRIMARY KEY AUTOINCREMENT,
    issuer     VARCHAR(16)  NOT NULL,
    key_label  VARCHAR(64)  NOT NULL,
    serial     VARCHAR(40)  NOT NULL,
    cert_der   BLOB         NOT NULL,
    not_before DATETIME     NOT NULL,
    not_after  DATETIME     NOT NULL,
    created_at DATETIME     NOT NULL
);
CREATE UNIQUE INDEX idx_ocsp_responders_serial ON ocsp_responders (serial);
CREATE INDEX idx_ocsp_responders_issuer ON ocsp_responders (issuer, not_after);
