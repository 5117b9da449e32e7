// Filterable, paginated lists: every request and every certificate (the
// server limits partners to their organisation).
import { useState, type FormEvent } from "react";
import { api, type Certificate, type CertRequest, type Me, type Page } from "../api";
import { ErrorBox, Loading, StateBadge, fmtDate, shortId, useLoad } from "../components";
import { daysUntil, queryString } from "../lib/forms";
import { Link } from "../router";
import { RequestTable } from "./Dashboard";
import { RevokeDialog } from "./Revoke";

/** usePaged loads a list and follows "next" cursors on demand. */
function usePaged<T>(path: string, filters: Record<string, string>) {
  const [more, setMore] = useState<{ items: T[]; next: string; error: unknown }>({ items: [], next: "", error: null });
  const key = path + queryString(filters);
  const first = useLoad(() => {
    setMore({ items: [], next: "", error: null });
    return api<Page<T>>(key);
  }, [key]);
  const next = more.next || (more.items.length === 0 ? first.data?.next ?? "" : "");
  const loadMore = async () => {
    try {
      const p = await api<Page<T>>(path + queryString({ ...filters, cursor: next }));
      setMore((m) => ({ items: [...m.items, ...p.items], next: p.next || "", error: null }));
      if (!p.next) setMore((m) => ({ ...m, next: "" }));
    } catch (e) {
      setMore((m) => ({ ...m, error: e }));
    }
  };
  const items = [...(first.data?.items ?? []), ...more.items];
  return { items, next, loadMore, error: first.error || more.error, loading: first.loading, reload: first.reload };
}

export function RequestsList({ me }: { me: Me }) {
  const [draft, setDraft] = useState({ state: "", org: "" });
  const [filters, setFilters] = useState(draft);
  const list = usePaged<CertRequest>("/api/v1/requests", filters);
  const apply = (e: FormEvent) => {
    e.preventDefault();
    setFilters(draft);
  };
  return (
    <section>
      <h1>Requests</h1>
      <form className="filters" onSubmit={apply} role="search" aria-label="Filter requests">
        <div className="field">
          <label htmlFor="f-state">State</label>
          <select id="f-state" value={draft.state} onChange={(e) => setDraft({ ...draft, state: e.target.value })} data-testid="filter-state">
            <option value="">any</option>
            {["submitted", "approved", "issued", "rejected", "cancelled"].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </div>
        {me.role !== "partner" && (
          <div className="field">
            <label htmlFor="f-org">Organisation</label>
            <input id="f-org" value={draft.org} onChange={(e) => setDraft({ ...draft, org: e.target.value })} data-testid="filter-org" />
          </div>
        )}
        <button type="submit">Filter</button>
      </form>
      <ErrorBox error={list.error} />
      {list.loading && list.items.length === 0 ? <Loading /> : <RequestTable items={list.items} showOrg={me.role !== "partner"} />}
      {list.next && (
        <button type="button" onClick={list.loadMore} data-testid="load-more">
          Load more
        </button>
      )}
    </section>
  );
}

export function CertificatesList({ me }: { me: Me }) {
  const [draft, setDraft] = useState({ state: "", org: "" });
  const [filters, setFilters] = useState(draft);
  const list = usePaged<Certificate>("/api/v1/certificates", filters);
  const [revoking, setRevoking] = useState<Certificate | null>(null);
  return (
    <section>
      <h1>Certificates</h1>
      <form
        className="filters"
        role="search"
        aria-label="Filter certificates"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
        }}
      >
        <div className="field">
          <label htmlFor="c-state">State</label>
          <select id="c-state" value={draft.state} onChange={(e) => setDraft({ ...draft, state: e.target.value })} data-testid="filter-cert-state">
            <option value="">any</option>
            <option>valid</option>
            <option>revoked</option>
            <option>expired</option>
          </select>
        </div>
        {me.role !== "partner" && (
          <div className="field">
            <label htmlFor="c-org">Organisation</label>
            <input id="c-org" value={draft.org} onChange={(e) => setDraft({ ...draft, org: e.target.value })} />
          </div>
        )}
        <button type="submit">Filter</button>
      </form>
      <ErrorBox error={list.error} />
      {list.loading && list.items.length === 0 ? (
        <Loading />
      ) : list.items.length === 0 ? (
        <p>No certificates.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="all-certs">
            <thead>
              <tr>
                <th scope="col">Serial</th>
                <th scope="col">Organisation</th>
                <th scope="col">Identities</th>
                <th scope="col">State</th>
                <th scope="col">Expires</th>
                {me.role !== "auditor" && <th scope="col">Action</th>}
              </tr>
            </thead>
            <tbody>
              {list.items.map((c) => (
                <tr key={c.id}>
                  <td>
                    <Link href={`/certificates/${c.id}`}>
                      <code>{shortId(c.serial)}</code>
                    </Link>
                  </td>
                  <td>{c.org}</td>
                  <td>{c.identities.join(", ")}</td>
                  <td>
                    <StateBadge state={c.state} />
                    {c.revocation_reason ? ` (${c.revocation_reason})` : ""}
                  </td>
                  <td>
                    {fmtDate(c.not_after)} {c.state === "valid" ? `(${daysUntil(c.not_after)} d)` : ""}
                  </td>
                  {me.role !== "auditor" && (
                    <td>
                      {c.state === "valid" && (
                        <button type="button" className="danger small" onClick={() => setRevoking(c)} data-testid={`revoke-${c.id}`}>
                          Revoke…
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list.next && (
        <button type="button" onClick={list.loadMore}>
          Load more
        </button>
      )}
      {revoking && (
        <RevokeDialog
          me={me}
          cert={revoking}
          onClose={() => setRevoking(null)}
          onDone={() => {
            setRevoking(null);
            list.reload();
          }}
        />
      )}
    </section>
  );
}
