-- certdesk schema (sqlite): the users who signed in, and invitations.
-- A row in users is written at every sign-in that the provider vouched for
-- (ID token verified), whether or not certdesk let the user in, so that an
-- admin can find a new partner without an organisation by name or e-mail
-- and assign them. role is what the last sign-in's claims granted ('' for
-- none); claimed_org the organisation claim of that sign-in ('' for none).
CREATE TABLE users (
    subject        VARCHAR(255) PRIMARY KEY,
    name           VARCHAR(255) NOT NULL DEFAULT '',
    email          VARCHAR(320) NOT NULL DEFAULT '',
    email_verified BOOLEAN      NOT NULL DEFAULT 0,
    role           VARCHAR(16)  NOT NULL DEFAULT '',
    claimed_org    VARCHAR(64)  NOT NULL DEFAULT '',
    first_seen_at  DATETIME NOT NULL,
    last_seen_at   DATETIME NOT NULL
);
CREATE INDEX idx_users_last_seen_at ON users (last_seen_at);
-- An admin invites an e-mail address (stored lower-case) to an
-- organisation. The first sign-in of a partner with no organisation whose
-- provider says that address is verified joins it before expires_at; the
-- invitation is then accepted (accepted_by, accepted_at) and never used
-- again.
CREATE TABLE invitations (
    id          VARCHAR(36)  PRIMARY KEY,
    org         VARCHAR(64)  NOT NULL REFERENCES organizations (slug),
    email       VARCHAR(320) NOT NULL,
    created_by  VARCHAR(255) NOT NULL DEFAULT '',
    created_at  DATETIME NOT NULL,
    expires_at  DATETIME NOT NULL,
    accepted_by VARCHAR(255) NOT NULL DEFAULT '',
    accepted_at DATETIME
);
CREATE INDEX idx_invitations_email ON invitations (email);
CREATE INDEX idx_invitations_org ON invitations (org);
