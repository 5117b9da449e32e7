-- certdesk schema, version 3 (PostgreSQL): notifications.
-- Who hears about expiry, per organisation. expiry_notice_days NULL or an
-- empty list means the portal's default (30, 14, 7 and 1 days).
ALTER TABLE organizations ADD COLUMN contact_emails TEXT DEFAULT '[]';
ALTER TABLE organizations ADD COLUMN expiry_notice_days TEXT;
-- Where the decision on a request is sent (the requester's e-mail at submit).
ALTER TABLE requests ADD COLUMN requester_email VARCHAR(255) NOT NULL DEFAULT '';

-- The durable outbox: a notification is written here, in the store, before
-- any attempt to deliver it; a worker delivers it with exponential backoff.
-- A row is done when sent_at or failed_at is set.
CREATE TABLE notifications (
    id              BIGSERIAL     PRIMARY KEY,
    channel         VARCHAR(16)   NOT NULL CHECK (channel IN ('email', 'webhook')),
    event           VARCHAR(64)   NOT NULL,
    recipient       VARCHAR(2048) NOT NULL,
    subject         TEXT          NOT NULL DEFAULT '',
    body            TEXT          NOT NULL,
    attempts        INTEGER       NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ   NOT NULL,
    sent_at         TIMESTAMPTZ,
    failed_at       TIMESTAMPTZ,
    last_error      TEXT          NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ   NOT NULL
);
CREATE INDEX idx_notifications_due ON notifications (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX idx_notifications_created_at ON notifications (created_at, id);

-- One row per certificate and threshold noticed: the primary key makes a
-- threshold noticed once, whichever replica scans.
CREATE TABLE expiry_notices (
    certificate_id VARCHAR(36) NOT NULL REFERENCES certificates (id),
    threshold_days INTEGER     NOT NULL CHECK (threshold_days > 0),
    sent_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (certificate_id, threshold_days)
);
