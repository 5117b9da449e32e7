// One request: its state, CSR details, policy results, history, the admin's
// approve/reject, the partner's cancel, and downloads once issued.
import { useEffect, useState } from "react";
import { api, chronological, eventDetail, type AuditEvent, type CertRequest, type Certificate, type Me, type Org, type Page } from "../api";
import { ErrorBox, Loading, ProblemList, StateBadge, fmtDate, useLoad } from "../components";
import { parseCSR, type CSRInfo } from "../lib/csr";
import { inNamespace } from "../lib/identity";
import { ignoredSANs, requestsChanged } from "../lib/pages";
import { issuanceText } from "../lib/issuance";
import { Link } from "../router";
import { ChannelLabel } from "./Channel";
import { Downloads } from "./Downloads";

export function RequestPage({ me, id }: { me: Me; id: string }) {
  const req = useLoad(() => api<CertRequest>(`/api/v1/requests/${encodeURIComponent(id)}`), [id]);
  const events = useLoad(() => api<Page<AuditEvent>>(`/api/v1/requests/${encodeURIComponent(id)}/events`), [id, req.data?.state]);
  const certId = req.data?.certificate_id;
  const cert = useLoad(() => (certId ? api<Certificate>(`/api/v1/certificates/${encodeURIComponent(certId)}`) : Promise.resolve(null)), [certId]);
  const [decided, setDecided] = useState<Decision | null>(null);
  const r = req.data;
  if (req.error && !r) return <ErrorBox error={req.error} />;
  if (!r) return <Loading />;
  return (
    <section>
      <h1>
        Request <code>{r.id}</code> <StateBadge state={r.state} testid="request-state" />
      </h1>
      {decided && <DecisionNote d={decided} />}
      {r.state === "submitted" && me.role === "partner" && <NextSteps />}
      <RequestDetails r={r} />
      {r.state === "submitted" && (
        <Decide
          me={me}
          r={r}
          onChange={(d) => {
            setDecided(d);
            req.reload();
          }}
        />
      )}
      {r.state === "approved" && <Issuance me={me} r={r} onChange={req.reload} />}
      {r.state === "issued" && r.certificate_id && (
        <>
          <p>
            Certificate: <Link href={`/certificates/${r.certificate_id}`} data-testid="certificate-link">{r.certificate_id}</Link>
          </p>
          <Downloads certId={r.certificate_id} requestId={r.id} usable={!cert.data || cert.data.state === "valid"} />
        </>
      )}
      <h2>History</h2>
      <ErrorBox error={events.error} />
      <ol className="history" data-testid="request-history">
        {chronological(events.data?.items ?? []).map((e) => {
          const reason = eventDetail(e).reason;
          return (
            <li key={e.seq}>
              <time dateTime={e.time}>{fmtDate(e.time)}</time> <strong>{e.action}</strong> by {e.actor} ({e.role}){reason ? ` — ${String(reason)}` : ""}
            </li>
          );
        })}
      </ol>
    </section>
  );
}

/** Decision is what an admin just did to a request, and the server's answer. */
export interface Decision {
  what: "approve" | "reject" | "cancel";
  request: CertRequest;
}

/** DecisionNote confirms a decision; an approval links to the issued certificate. */
export function DecisionNote({ d, testSuffix = "" }: { d: Decision; testSuffix?: string }) {
  const r = d.request;
  const who = r.identities[0] ?? r.id;
  return (
    <div className="notice" role="status" data-testid={`decision-note${testSuffix}`}>
      {d.what === "approve" ? (
        r.certificate_id ? (
          <>
            Approved <code>{who}</code>: the certificate is issued.{" "}
            <Link href={`/certificates/${r.certificate_id}`} data-testid={`issued-link${testSuffix}`}>
              Open the certificate
            </Link>
          </>
        ) : (
          <>
            Approved <code>{who}</code>; the certificate is signed as soon as the HSM answers. <Link href={`/requests/${r.id}`}>Follow the request</Link>
          </>
        )
      ) : d.what === "reject" ? (
        <>
          Rejected <code>{who}</code>; the requester sees the reason.
        </>
      ) : (
        <>Request cancelled.</>
      )}
    </div>
  );
}

/** NextSteps tells a partner what happens after submitting. */
function NextSteps() {
  return (
    <div className="notice" role="status" data-testid="next-steps">
      <strong>Submitted.</strong> An administrator now checks the request against your organisation's namespace and approves or rejects it; the reason is
      shown here. Once approved, this page links to the certificate and its downloads. If you generated the key in this browser, come back in this browser
      to download it.
    </div>
  );
}

/** RequestDetails shows who asked for what, the CSR as the browser reads it, and, while the request waits, the server's policy verdict. */
export function RequestDetails({ r, namespace }: { r: CertRequest; namespace?: Org | null }) {
  const [csr, setCsr] = useState<CSRInfo | null>(null);
  useEffect(() => {
    if (!r.csr) return;
    parseCSR(r.csr).then((p) => setCsr(p.ok ? p.info : null));
  }, [r.csr]);
  return (
    <>
      <dl className="details">
        <dt>Organisation</dt>
        <dd>{r.org}</dd>
        <dt>Requested by</dt>
        <dd data-testid="requested-by">{r.requested_by}</dd>
        <dt>Channel</dt>
        <dd>
          <ChannelLabel r={r} refs testid="request-channel" />
        </dd>
        <dt>Identities</dt>
        <dd>
          <ul className="plain">
            {r.identities.map((i) => (
              <li key={i}>
                <code>{i}</code>{" "}
                {namespace && (inNamespace(i, namespace) ? <span className="badge ok">in namespace</span> : <span className="badge bad">outside namespace</span>)}
              </li>
            ))}
          </ul>
        </dd>
        <dt>Key</dt>
        <dd>{r.key_type || csr?.keyType}</dd>
        <dt>Validity</dt>
        <dd>{r.validity_days} days</dd>
        {r.renewal_of && (
          <>
            <dt>Renews</dt>
            <dd>
              <Link href={`/certificates/${r.renewal_of}`}>{r.renewal_of}</Link>
            </dd>
          </>
        )}
        {r.note && (
          <>
            <dt>Note</dt>
            <dd>{r.note}</dd>
          </>
        )}
        <dt>Created</dt>
        <dd>{fmtDate(r.created_at)}</dd>
        {r.decided_by && (
          <>
            <dt>Decided by</dt>
            <dd>
              {r.decided_by}
              {r.decision_reason ? ` — ${r.decision_reason}` : ""}
            </dd>
          </>
        )}
        {csr && (
          <>
            <dt>CSR subject</dt>
            <dd>{csr.subject || "(empty)"}</dd>
            <dt>CSR SANs</dt>
            <dd>
              {csr.sans.join(", ") || "(none)"}
              <IgnoredSANs sans={csr.sans} identities={r.identities} />
            </dd>
            <dt>CSR signature</dt>
            <dd>
              {csr.signatureAlgorithm}
              {csr.signatureValid === true ? " (verified)" : csr.signatureValid === false ? " (does not verify)" : ""}
            </dd>
          </>
        )}
      </dl>
      {r.policy && (
        <>
          <h3>Policy check</h3>
          <p className="hint">The server's verdict under the organisation's current policy; approving checks it again, and the certificate is linted before the HSM signs it.</p>
          <ProblemList problems={r.policy.problems ?? []} testid={`policy-${r.id}`} />
        </>
      )}
    </>
  );
}

/** IgnoredSANs says which of the CSR's names the CA leaves out: the certificate carries the approved identities only. */
export function IgnoredSANs({ sans, identities }: { sans: string[]; identities: string[] }) {
  const ignored = ignoredSANs(sans, identities);
  if (ignored.length === 0) return null;
  return (
    <p className="hint" data-testid="ignored-sans">
      Not in the certificate: {ignored.join(", ")}. The CA sets the SANs from the requested identities only and ignores the CSR's other names.
    </p>
  );
}

/** Decide holds approve/reject (admin) and cancel (the requester's organisation). */
export function Decide({ me, r, onChange, testSuffix = "" }: { me: Me; r: CertRequest; onChange: (d: Decision) => void; testSuffix?: string }) {
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const own = r.requested_by === me.subject;
  async function act(what: "approve" | "reject" | "cancel") {
    setBusy(true);
    setError(null);
    try {
      const answer = await api<CertRequest>(`/api/v1/requests/${encodeURIComponent(r.id)}/${what}`, { body: what === "cancel" ? {} : { reason } });
      window.dispatchEvent(new Event(requestsChanged));
      onChange({ what, request: answer ?? r });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  const inputId = `reason-${r.id}`;
  return (
    <div className="decide">
      {me.role === "admin" && (
        <>
          {own ? (
            <p className="hint">You asked for this request, so another admin must decide it.</p>
          ) : (
            <>
              <div className="field">
                <label htmlFor={inputId}>Reason (recorded in the audit log{r.state === "submitted" ? "; required to reject" : ""})</label>
                <input id={inputId} value={reason} onChange={(e) => setReason(e.target.value)} data-testid={`reason-input${testSuffix}`} />
              </div>
              <div className="buttons">
                <button type="button" className="primary" disabled={busy} onClick={() => act("approve")} data-testid={`approve-${r.id}`}>
                  Approve and issue
                </button>
                <button type="button" className="danger" disabled={busy || reason.trim() === ""} onClick={() => act("reject")} data-testid={`reject-${r.id}`}>
                  Reject
                </button>
              </div>
            </>
          )}
        </>
      )}
      {me.role !== "auditor" && (own || (me.role === "partner" && me.org === r.org)) && (
        <button type="button" disabled={busy} onClick={() => act("cancel")} data-testid={`cancel-${r.id}`}>
          Cancel request
        </button>
      )}
      <ErrorBox error={error} />
    </div>
  );
}

/** Issuance shows an approved request's issuance, and an admin's Retry when it failed. */
export function Issuance({ me, r, onChange }: { me: Me; r: CertRequest; onChange: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const canRetry = r.issuance === "failed" && me.role === "admin" && r.requested_by !== me.subject;
  async function retry() {
    setBusy(true);
    setError(null);
    try {
      await api(`/api/v1/requests/${encodeURIComponent(r.id)}/retry`, { body: {} });
      onChange();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  return (
    <div className="decide">
      <p data-testid="issuance-state">{issuanceText(r)}</p>
      {canRetry && (
        <button type="button" className="primary" disabled={busy} onClick={retry} data-testid={`retry-${r.id}`}>
          Retry
        </button>
      )}
      <ErrorBox error={error} />
    </div>
  );
}
