-- certdesk schema, version 2 (PostgreSQL): delegated OCSP responder
-- certificates. The key lives in the token under key_label; every
-- replica signs with the newest row of its issuer.
CREATE TABLE ocsp_responders (
    id         BIGSERIAL    PRIMARY KEY,
    issuer     VARCHAR(16)  NOT NULL,
    key_label  VARCHAR(64)  NOT NULL,
    serial     VARCHAR(40)  NOT NULL,
    cert_der   BYTEA        NOT NULL,
    not_before TIMESTAMPTZ  NOT NULL,
    not_after  TIMESTAMPTZ  NOT NULL,
    created_at TIMESTAMPTZ  NOT NULL
);
CREATE UNIQUE INDEX idx_ocsp_responders_serial ON ocsp_responders (serial);
CREATE INDEX idx_ocsp_responders_issuer ON ocsp_responders (issuer, not_after);
