// One certificate: details, downloads, revoke and renew.
import { useState } from "react";
import { api, revocationReasons, type Certificate, type Me } from "../api";
import { ErrorBox, Loading, StateBadge, fmtDate, useLoad } from "../components";
import { daysUntil, expiryLevel, reasonLabel } from "../lib/forms";
import { Link } from "../router";
import { Downloads } from "./Downloads";
import { RevokeDialog } from "./Revoke";

export function CertificatePage({ me, id }: { me: Me; id: string }) {
  const cert = useLoad(() => api<Certificate>(`/api/v1/certificates/${encodeURIComponent(id)}`), [id]);
  const reasons = useLoad(revocationReasons, []);
  const [revoking, setRevoking] = useState(false);
  const [override, setOverride] = useState<Certificate | null>(null);
  const c = override ?? cert.data;
  if (cert.error && !c) return <ErrorBox error={cert.error} />;
  if (!c) return <Loading />;
  const level = expiryLevel(c.not_after);
  return (
    <section>
      <h1>
        Certificate <code>{c.serial}</code> <StateBadge state={c.state} testid="certificate-state" />
      </h1>
      {c.state === "valid" && level === "soon" && (
        <div className="warning" role="status">
          Expires in {daysUntil(c.not_after)} days — renew it.
        </div>
      )}
      <dl className="details">
        <dt>Organisation</dt>
        <dd>{c.org}</dd>
        <dt>Identities</dt>
        <dd>{c.identities.join(", ")}</dd>
        <dt>Key</dt>
        <dd>{c.key_type}</dd>
        <dt>Valid</dt>
        <dd>
          {fmtDate(c.not_before)} — {fmtDate(c.not_after)}
        </dd>
        <dt>Request</dt>
        <dd>
          <Link href={`/requests/${c.request_id}`}>{c.request_id}</Link>
        </dd>
        {c.state === "revoked" && (
          <>
            <dt>Revoked</dt>
            <dd data-testid="revocation-info">
              {fmtDate(c.revoked_at)} — {c.revocation_reason ? reasonLabel(reasons.data, c.revocation_reason) : ""}
            </dd>
          </>
        )}
      </dl>
      {me.role !== "auditor" && c.state === "valid" && (
        <div className="buttons">
          <button type="button" className="danger" onClick={() => setRevoking(true)} data-testid="revoke-button">
            Revoke…
          </button>
          <Link className="button" href={`/requests/new?renew=${encodeURIComponent(c.id)}`} data-testid="renew-button">
            Renew (new CSR, same identities)
          </Link>
        </div>
      )}
      <ErrorBox error={cert.error} />
      <Downloads certId={c.id} requestId={c.request_id} usable={c.state === "valid"} />
      {revoking && (
        <RevokeDialog
          me={me}
          cert={c}
          onClose={() => setRevoking(false)}
          onDone={(n) => {
            setOverride(n);
            setRevoking(false);
            cert.reload();
          }}
        />
      )}
    </section>
  );
}
