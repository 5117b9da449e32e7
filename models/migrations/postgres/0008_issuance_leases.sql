-- certdesk schema, version 6 (PostgreSQL): who is signing an in-flight certificate,
-- and until when. The reserving request holds the lease (claimed_by, a
-- random claim id, until lease_until); recovery signs a pending certificate
-- only after claiming it with a conditional UPDATE once the lease has
-- expired, so a live issuance and recovery never both sign one serial.
-- Rows from before this version have no lease: recovery may claim them.
ALTER TABLE certificates ADD COLUMN claimed_by VARCHAR(36) NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN lease_until TIMESTAMPTZ;
-- An approved request whose issuance cannot be done (policy now refuses,
-- the certificate cannot be prepared) keeps its decision and says why here;
-- recovery leaves it alone until an admin retries it.
ALTER TABLE requests ADD COLUMN failure_reason TEXT NOT NULL DEFAULT '';
