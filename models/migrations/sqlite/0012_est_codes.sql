-- certdesk schema, version 12 (sqlite): one-time EST enrolment codes. An
-- admin or a partner of the binding's organisation makes a code for an
-- approved ACME binding; a device gives it once to /.well-known/est/
-- simpleenroll as HTTP basic (user "code") and enrols inside the binding's
-- scope. Only the hex SHA-256 of the code is stored (code_hash); used_at
-- is set by the one use, which an expired code never gets.
CREATE TABLE est_codes (
    id          VARCHAR(36)  PRIMARY KEY,
    binding_id  VARCHAR(36)  NOT NULL REFERENCES acme_bindings (id),
    org         VARCHAR(64)  NOT NULL REFERENCES organizations (slug),
    code_hash   VARCHAR(64)  NOT NULL UNIQUE,
    created_by  VARCHAR(255) NOT NULL,
    expires_at  DATETIME     NOT NULL,
    used_at     DATETIME,
    used_from   VARCHAR(64)  NOT NULL DEFAULT '',
    created_at  DATETIME     NOT NULL
);
CREATE INDEX idx_est_codes_binding_id ON est_codes (binding_id);
