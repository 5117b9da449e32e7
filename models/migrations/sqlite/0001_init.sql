-- certdesk schema, version 1 (SQLite).
CREATE TABLE organizations (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    slug                  VARCHAR(64)  NOT NULL,
    name                  VARCHAR(200) NOT NULL,
    uri_prefixes          TEXT         DEFAULT '[]',
    dns_suffixes          TEXT         DEFAULT '[]',
    email_domains         TEXT         DEFAULT '[]',
    max_validity_days     INTEGER      NOT NULL CHECK (max_validity_days > 0),
    auto_approve_renewals BOOLEAN      NOT NULL DEFAULT 0,
    created_at            DATETIME     NOT NULL,
    updated_at            DATETIME     NOT NULL
);
CREATE UNIQUE INDEX idx_organizations_slug ON organizations (slug);

CREATE TABLE requests (
    id              VARCHAR(36)  PRIMARY KEY,
    state           VARCHAR(16)  NOT NULL CHECK (state IN ('submitted', 'approved', 'issued', 'rejected', 'cancelled')),
    org             VARCHAR(64)  NOT NULL REFERENCES organizations (slug),
    identities      TEXT         DEFAULT '[]',
    csrpem          TEXT         NOT NULL,
    key_type        VARCHAR(32)  NOT NULL DEFAULT '',
    validity_days   INTEGER      NOT NULL,
    note            TEXT         NOT NULL DEFAULT '',
    requested_by    VARCHAR(255) NOT NULL,
    renewal_of      VARCHAR(36),
    decided_by      VARCHAR(255) NOT NULL DEFAULT '',
    decision_reason TEXT         NOT NULL DEFAULT '',
    decided_at      DATETIME,
    certificate_id  VARCHAR(36),
    created_at      DATETIME     NOT NULL,
    updated_at      DATETIME     NOT NULL
);
CREATE INDEX idx_requests_state ON requests (state);
CREATE INDEX idx_requests_org ON requests (org);
CREATE INDEX idx_requests_requested_by ON requests (requested_by);
CREATE INDEX idx_requests_created_at ON requests (created_at, id);

CREATE TABLE certificates (
    id                VARCHAR(36)  PRIMARY KEY,
    serial            VARCHAR(40)  NOT NULL,
    request_id        VARCHAR(36)  NOT NULL REFERENCES requests (id),
    org               VARCHAR(64)  NOT NULL REFERENCES organizations (slug),
    identities        TEXT         DEFAULT '[]',
    key_type          VARCHAR(32)  NOT NULL DEFAULT '',
    not_before        DATETIME     NOT NULL,
    not_after         DATETIME     NOT NULL,
    state             VARCHAR(16)  NOT NULL CHECK (state IN ('pending', 'issued', 'revoked', 'failed')),
    precert_der       BLOB,
    der               BLOB,
    revoked_at        DATETIME,
    revocation_reason INTEGER,
    revoked_by        VARCHAR(255) NOT NULL DEFAULT '',
    created_at        DATETIME     NOT NULL,
    updated_at        DATETIME     NOT NULL
);
CREATE UNIQUE INDEX idx_certificates_serial ON certificates (serial);
CREATE INDEX idx_certificates_request_id ON certificates (request_id);
CREATE INDEX idx_certificates_org ON certificates (org);
CREATE INDEX idx_certificates_not_after ON certificates (not_after);
CREATE INDEX idx_certificates_state ON certificates (state, serial);
CREATE INDEX idx_certificates_created_at ON certificates (created_at, id);
-- At most one live certificate per request: two approvals racing to issue
-- cannot both reserve (exactly one certificate).
CREATE UNIQUE INDEX idx_certificates_one_live_per_request ON certificates (request_id) WHERE state IN ('pending', 'issued', 'revoked');

CREATE TABLE audit_events (
    seq         BIGINT       PRIMARY KEY,
    "time"      DATETIME     NOT NULL,
    actor       VARCHAR(255) NOT NULL,
    role        VARCHAR(16)  NOT NULL DEFAULT '',
    org         VARCHAR(64)  NOT NULL DEFAULT '',
    action      VARCHAR(64)  NOT NULL,
    object_type VARCHAR(32)  NOT NULL DEFAULT '',
    object_id   VARCHAR(64)  NOT NULL DEFAULT '',
    source      VARCHAR(64)  NOT NULL DEFAULT '',
    detail      TEXT         NOT NULL,
    prev_hash   VARCHAR(64)  NOT NULL,
    hash        VARCHAR(64)  NOT NULL
);
CREATE INDEX idx_audit_events_time ON audit_events ("time");
CREATE INDEX idx_audit_events_actor ON audit_events (actor);
CREATE INDEX idx_audit_events_org ON audit_events (org);
CREATE INDEX idx_audit_events_action ON audit_events (action);
CREATE INDEX idx_audit_events_object_id ON audit_events (object_id);

-- The head of the audit chain: one row, locked by every append so that
-- appends are serial, and compared by verification so that removing the last
-- events is detected.
CREATE TABLE audit_heads (
    id   INTEGER     PRIMARY KEY CHECK (id = 1),
    seq  BIGINT      NOT NULL,
    hash VARCHAR(64) NOT NULL
);
INSERT INTO audit_heads (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE api_tokens (
    id           VARCHAR(36)  PRIMARY KEY,
    name         VARCHAR(200) NOT NULL DEFAULT '',
    subject      VARCHAR(255) NOT NULL,
    role         VARCHAR(16)  NOT NULL,
    org          VARCHAR(64)  NOT NULL DEFAULT '',
    hash         VARCHAR(64)  NOT NULL,
    expires_at   DATETIME     NOT NULL,
    revoked_at   DATETIME,
    last_used_at DATETIME,
    created_at   DATETIME     NOT NULL
);
CREATE UNIQUE INDEX idx_api_tokens_hash ON api_tokens (hash);
CREATE INDEX idx_api_tokens_subject ON api_tokens (subject);

CREATE TABLE sessions (
    id            VARCHAR(64)  PRIMARY KEY,
    subject       VARCHAR(255) NOT NULL,
    name          VARCHAR(255) NOT NULL DEFAULT '',
    email         VARCHAR(255) NOT NULL DEFAULT '',
    role          VARCHAR(16)  NOT NULL,
    org           VARCHAR(64)  NOT NULL DEFAULT '',
    csrf_token    VARCHAR(64)  NOT NULL,
    id_token_hint TEXT         NOT NULL DEFAULT '',
    created_at    DATETIME     NOT NULL,
    last_seen_at  DATETIME     NOT NULL,
    expires_at    DATETIME     NOT NULL
);
CREATE INDEX idx_sessions_subject ON sessions (subject);
CREATE INDEX idx_sessions_expires_at ON sessions (expires_at);

CREATE TABLE crls (
    id          INTEGER     PRIMARY KEY AUTOINCREMENT,
    issuer      VARCHAR(16) NOT NULL,
    number      BIGINT      NOT NULL,
    this_update DATETIME    NOT NULL,
    next_update DATETIME    NOT NULL,
    entries     INTEGER     NOT NULL,
    der         BLOB        NOT NULL,
    created_at  DATETIME    NOT NULL
);
CREATE UNIQUE INDEX idx_crl_issuer_number ON crls (issuer, number);

CREATE TABLE memberships (
    subject    VARCHAR(255) PRIMARY KEY,
    org        VARCHAR(64)  NOT NULL REFERENCES organizations (slug),
    created_by VARCHAR(255) NOT NULL DEFAULT '',
    created_at DATETIME     NOT NULL
);
CREATE INDEX idx_memberships_org ON memberships (org);
