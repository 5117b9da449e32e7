-- certdesk schema, version 13 (postgres): the state indexes cover only the
-- open states. Requests are listed by state mostly to find the open ones
-- (the admin's queue, approvals left to issue), and certificates to find the
-- pending ones (recovery); an issued or revoked row is found by its serial,
-- organisation, request or dates. A row that moves on to a closed state
-- (issued, rejected, cancelled; issued, failed) now leaves these indexes
-- instead of being added to them again, so issuing a certificate maintains
-- two index entries fewer.
DROP INDEX idx_requests_state;
CREATE INDEX idx_requests_open ON requests (state, created_at, id) WHERE state IN ('submitted', 'approved');
DROP INDEX idx_certificates_state;
CREATE INDEX idx_certificates_pending ON certificates (created_at, id) WHERE state = 'pending';
