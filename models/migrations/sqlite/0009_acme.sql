-- certdesk schema, version 9 (sqlite): automation. ACME external account
-- bindings (RFC 8555 §7.3.4), asked for by a partner and approved by another
-- person, scoped to DNS names of the organisation; the ACME accounts bound
-- to them, their orders, and the replay nonces (RFC 8555 §6.5) shared by
-- every replica. A request records through which channel it came (via:
-- '' for the portal, 'acme', 'est', 'renew') and from which binding,
-- account or certificate (via_ref).
ALTER TABLE requests ADD COLUMN via VARCHAR(16) NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN via_ref VARCHAR(255) NOT NULL DEFAULT '';

-- hmac_key_sealed is the EAB HMAC key sealed with AES-256-GCM under a key
-- derived from the session key; the key itself is shown once to the
-- requester (key_shown_at).
CREATE TABLE acme_bindings (
    id              VARCHAR(36)  PRIMARY KEY,
    org             VARCHAR(64)  NOT NULL REFERENCES organizations (slug),
    name            VARCHAR(200) NOT NULL DEFAULT '',
    dns_names       TEXT         NOT NULL DEFAULT '[]',
    validity_days   INTEGER      NOT NULL DEFAULT 0,
    state           VARCHAR(16)  NOT NULL CHECK (state IN ('requested', 'approved', 'revoked')),
    requested_by    VARCHAR(255) NOT NULL,
    approved_by     VARCHAR(255) NOT NULL DEFAULT '',
    approved_at     DATETIME,
    revoked_by      VARCHAR(255) NOT NULL DEFAULT '',
    revoked_at      DATETIME,
    hmac_key_sealed BLOB,
    key_shown_at    DATETIME,
    expires_at      DATETIME  NOT NULL,
    created_at      DATETIME  NOT NULL,
    updated_at      DATETIME  NOT NULL
);
CREATE INDEX idx_acme_bindings_org ON acme_bindings (org);

CREATE TABLE acme_accounts (
    id          VARCHAR(36)  PRIMARY KEY,
    binding_id  VARCHAR(36)  NOT NULL REFERENCES acme_bindings (id),
    org         VARCHAR(64)  NOT NULL REFERENCES organizations (slug),
    thumbprint  VARCHAR(64)  NOT NULL,
    jwk         TEXT         NOT NULL,
    status      VARCHAR(16)  NOT NULL CHECK (status IN ('valid', 'deactivated')),
    contact     TEXT         NOT NULL DEFAULT '[]',
    created_at  DATETIME  NOT NULL,
    updated_at  DATETIME  NOT NULL
);
CREATE UNIQUE INDEX idx_acme_accounts_thumbprint ON acme_accounts (thumbprint);
CREATE INDEX idx_acme_accounts_binding ON acme_accounts (binding_id);

CREATE TABLE acme_orders (
    id             VARCHAR(36)  PRIMARY KEY,
    account_id     VARCHAR(36)  NOT NULL REFERENCES acme_accounts (id),
    binding_id     VARCHAR(36)  NOT NULL REFERENCES acme_bindings (id),
    org            VARCHAR(64)  NOT NULL REFERENCES organizations (slug),
    status         VARCHAR(16)  NOT NULL CHECK (status IN ('ready', 'processing', 'valid', 'invalid')),
    identifiers    TEXT         NOT NULL DEFAULT '[]',
    replaces       VARCHAR(255) NOT NULL DEFAULT '',
    request_id     VARCHAR(36),
    certificate_id VARCHAR(36),
    error          TEXT         NOT NULL DEFAULT '',
    expires        DATETIME  NOT NULL,
    created_at     DATETIME  NOT NULL,
    updated_at     DATETIME  NOT NULL
);
CREATE INDEX idx_acme_orders_account ON acme_orders (account_id);

CREATE TABLE acme_nonces (
    value      VARCHAR(64) PRIMARY KEY,
    expires_at DATETIME NOT NULL
);
CREATE INDEX idx_acme_nonces_expires ON acme_nonces (expires_at);
