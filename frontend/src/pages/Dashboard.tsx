// The partner's (and admin's) home: certificates soonest-expiry first with
// warnings under 30 days, and the requests still in the workflow.
import { api, type Certificate, type CertRequest, type Me, type Page } from "../api";
import { ErrorBox, Loading, StateBadge, fmtDate, shortId, useLoad } from "../components";
import { bySoonestExpiry, daysUntil, expiryLevel, EXPIRY_WARNING_DAYS } from "../lib/forms";
import { pendingCount } from "../lib/pages";
import { Link } from "../router";
import { ChannelLabel } from "./Channel";

export function Dashboard({ me }: { me: Me }) {
  const certs = useLoad(() => api<Page<Certificate>>("/api/v1/certificates?state=valid&limit=200"), []);
  const reqs = useLoad(() => api<Page<CertRequest>>("/api/v1/requests?limit=50"), []);
  const pending = useLoad(() => (me.role === "admin" ? api<Page<CertRequest>>("/api/v1/requests?state=submitted&limit=100") : Promise.resolve(null)), [me.role]);
  const sorted = bySoonestExpiry(certs.data?.items ?? []);
  const soon = sorted.filter((c) => expiryLevel(c.not_after) === "soon");
  return (
    <section>
      <h1>Dashboard{me.org ? ` — ${me.org}` : ""}</h1>
      {me.role !== "auditor" && (
        <p>
          <Link className="button primary" href="/requests/new" data-testid="new-request">
            New certificate request
          </Link>
        </p>
      )}
      {me.role === "admin" && pending.data && (
        <p className="notice" data-testid="pending-count">
          {pendingCount(pending.data.items, pending.data.next) === "0" ? (
            "No request waits for a decision."
          ) : (
            <>
              <strong>{pendingCount(pending.data.items, pending.data.next)}</strong> request{pending.data.items.length === 1 && !pending.data.next ? " waits" : "s wait"} for a
              decision. <Link href="/queue">Open the pending queue</Link>
            </>
          )}
        </p>
      )}
      {soon.length > 0 && (
        <div className="warning" role="status" data-testid="expiry-warning">
          {soon.length} certificate{soon.length > 1 ? "s expire" : " expires"} within {EXPIRY_WARNING_DAYS} days: renew {soon.length > 1 ? "them" : "it"} now.
        </div>
      )}
      <h2>Certificates</h2>
      <ErrorBox error={certs.error} />
      {certs.loading && !certs.data ? (
        <Loading />
      ) : sorted.length === 0 ? (
        <p>No valid certificates yet.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="cert-table">
            <thead>
              <tr>
                <th scope="col">Identities</th>
                <th scope="col">Serial</th>
                <th scope="col">State</th>
                <th scope="col">Expires</th>
                <th scope="col">Days left</th>
              </tr>
            </thead>
            <tbody>
              {sorted.map((c) => {
                const level = expiryLevel(c.not_after);
                return (
                  <tr key={c.id} className={`expiry-${level}`} data-testid={`cert-row-${c.id}`}>
                    <td>
                      <Link href={`/certificates/${c.id}`}>{c.identities.join(", ") || c.id}</Link>
                    </td>
                    <td>
                      <code>{shortId(c.serial)}</code>
                    </td>
                    <td>
                      <StateBadge state={c.state} />
                    </td>
                    <td>{fmtDate(c.not_after)}</td>
                    <td>
                      {daysUntil(c.not_after)}
                      {level === "soon" && <span className="badge warn"> expires soon</span>}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <h2>Requests</h2>
      <ErrorBox error={reqs.error} />
      {reqs.loading && !reqs.data ? <Loading /> : <RequestTable items={reqs.data?.items ?? []} />}
    </section>
  );
}

/** RequestTable lists requests with links to their pages. */
export function RequestTable({ items, showOrg = false }: { items: CertRequest[]; showOrg?: boolean }) {
  if (items.length === 0) return <p>No requests.</p>;
  return (
    <div className="table-wrap">
      <table data-testid="request-table">
        <thead>
          <tr>
            <th scope="col">Request</th>
            {showOrg && <th scope="col">Organisation</th>}
            <th scope="col">Identities</th>
            <th scope="col">State</th>
            <th scope="col">Channel</th>
            <th scope="col">Requested by</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          {items.map((r) => (
            <tr key={r.id} data-testid={`request-row-${r.id}`}>
              <td>
                <Link href={`/requests/${r.id}`}>{shortId(r.id)}</Link>
              </td>
              {showOrg && <td>{r.org}</td>}
              <td>{r.identities.join(", ")}</td>
              <td>
                <StateBadge state={r.state} />
              </td>
              <td>
                <ChannelLabel r={r} testid={`request-channel-${r.id}`} />
              </td>
              <td>{r.requested_by}</td>
              <td>{fmtDate(r.updated_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
