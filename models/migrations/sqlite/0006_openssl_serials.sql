-- certdesk schema, version 6: serials are stored as OpenSSL prints them
-- (`openssl x509 -noout -serial`, nginx's $ssl_client_serial): upper-case
-- hex, two digits a byte. Until now they were lower-case hex without leading
-- zeros (Go's big.Int.Text(16)), so a serial copied from a gateway log did not
-- match. The rewrite is one-to-one, so the unique indexes hold throughout.
-- Audit events keep the serials they were written with: they are hash-chained.
UPDATE certificates SET serial = CASE WHEN length(serial) % 2 = 1 THEN '0' || upper(serial) ELSE upper(serial) END;
UPDATE ocsp_responders SET serial = CASE WHEN length(serial) % 2 = 1 THEN '0' || upper(serial) ELSE upper(serial) END;
