// Admin pages: the pending queue, organisations and their namespaces, and
// the revocation status (CRLs and OCSP responder).
import { useState, type FormEvent } from "react";
import { api, type CertRequest, type Me, type Org, type Page, type Revocation } from "../api";
import { ErrorBox, Loading, fmtDate, useLoad } from "../components";
import { splitIdentities } from "../lib/identity";
import { crlBundleURL, namespaceParts } from "../lib/pages";
import { Link } from "../router";
import { Decide, DecisionNote, RequestDetails, type Decision } from "./RequestPage";

export function AdminQueue({ me }: { me: Me }) {
  const q = useLoad(() => api<Page<CertRequest>>("/api/v1/requests?state=submitted&limit=100"), []);
  const orgs = useLoad(() => api<Page<Org> | Org[]>("/api/v1/orgs").then((r) => (Array.isArray(r) ? r : r.items)), []);
  const items = q.data?.items ?? [];
  const [decisions, setDecisions] = useState<Decision[]>([]);
  return (
    <section>
      <h1>Pending requests</h1>
      {decisions.map((d, i) => (
        <DecisionNote key={d.request.id} d={d} testSuffix={i === 0 ? "" : `-${i}`} />
      ))}
      <ErrorBox error={q.error} />
      {q.loading && !q.data ? (
        <Loading />
      ) : items.length === 0 ? (
        <p data-testid="queue-empty">Nothing waits for a decision.</p>
      ) : (
        <ul className="cards" data-testid="queue">
          {items.map((r) => (
            <li key={r.id} className="card" data-testid={`queue-item-${r.id}`}>
              <h2>
                <Link href={`/requests/${r.id}`}>{r.identities[0] ?? r.id}</Link> <span className="muted">from {r.org}</span>
              </h2>
              <RequestDetails r={r} namespace={orgs.data?.find((o) => o.slug === r.org) ?? null} />
              <Decide
                me={me}
                r={r}
                onChange={(d) => {
                  setDecisions((ds) => [d, ...ds.filter((x) => x.request.id !== d.request.id)].slice(0, 5));
                  q.reload();
                }}
                testSuffix={`-${r.id}`}
              />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

const emptyOrg: Org = { slug: "", name: "", uri_prefixes: [], dns_suffixes: [], email_domains: [], max_validity_days: 90, auto_approve_renewals: false };

export function Orgs() {
  const list = useLoad(() => api<Page<Org> | Org[]>("/api/v1/orgs").then((r) => (Array.isArray(r) ? r : r.items)), []);
  const [editing, setEditing] = useState<{ org: Org; isNew: boolean } | null>(null);
  return (
    <section>
      <h1>Organisations</h1>
      <ErrorBox error={list.error} />
      <button type="button" onClick={() => setEditing({ org: emptyOrg, isNew: true })} data-testid="new-org">
        New organisation
      </button>
      {list.loading && !list.data ? (
        <Loading />
      ) : (
        <div className="table-wrap">
          <table data-testid="org-table">
            <thead>
              <tr>
                <th scope="col">Slug</th>
                <th scope="col">Name</th>
                <th scope="col">Namespace</th>
                <th scope="col">Max validity</th>
                <th scope="col">Auto-approve renewals</th>
                <th scope="col">Edit</th>
              </tr>
            </thead>
            <tbody>
              {(list.data ?? []).map((o) => (
                <tr key={o.slug}>
                  <td>{o.slug}</td>
                  <td>{o.name}</td>
                  <td data-testid={`org-namespace-${o.slug}`}>
                    {namespaceParts(o).length === 0 ? (
                      <span className="muted">nothing yet</span>
                    ) : (
                      <dl className="namespace">
                        {namespaceParts(o).map((p) => (
                          <div key={p.label}>
                            <dt>{p.label}</dt>
                            <dd>
                              {p.entries.map((e) => (
                                <code key={e}>{e}</code>
                              ))}
                            </dd>
                          </div>
                        ))}
                      </dl>
                    )}
                  </td>
                  <td>{o.max_validity_days} d</td>
                  <td>{o.auto_approve_renewals ? "yes" : "no"}</td>
                  <td>
                    <button type="button" className="small" onClick={() => setEditing({ org: o, isNew: false })} data-testid={`edit-org-${o.slug}`}>
                      Edit
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {editing && (
        <OrgForm
          key={editing.org.slug}
          initial={editing.org}
          isNew={editing.isNew}
          onDone={() => {
            setEditing(null);
            list.reload();
          }}
          onCancel={() => setEditing(null)}
        />
      )}
    </section>
  );
}

function OrgForm({ initial, isNew, onDone, onCancel }: { initial: Org; isNew: boolean; onDone: () => void; onCancel: () => void }) {
  const [f, setF] = useState({
    slug: initial.slug,
    name: initial.name,
    uris: (initial.uri_prefixes ?? []).join("\n"),
    dns: (initial.dns_suffixes ?? []).join("\n"),
    emails: (initial.email_domains ?? []).join("\n"),
    max: String(initial.max_validity_days || 90),
    auto: initial.auto_approve_renewals,
  });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  async function save(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body: Org = {
      slug: f.slug.trim(),
      name: f.name.trim(),
      uri_prefixes: splitIdentities(f.uris),
      dns_suffixes: splitIdentities(f.dns),
      email_domains: splitIdentities(f.emails),
      max_validity_days: Number(f.max),
      auto_approve_renewals: f.auto,
    };
    try {
      if (isNew) await api("/api/v1/orgs", { body });
      else await api(`/api/v1/orgs/${encodeURIComponent(initial.slug)}`, { method: "PUT", body });
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  const field = (id: string, label: string, k: keyof typeof f, multi = false) => (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {multi ? (
        <textarea id={id} rows={2} value={String(f[k])} onChange={(e) => setF({ ...f, [k]: e.target.value })} data-testid={id} />
      ) : (
        <input id={id} value={String(f[k])} disabled={k === "slug" && !isNew} onChange={(e) => setF({ ...f, [k]: e.target.value })} data-testid={id} />
      )}
    </div>
  );
  return (
    <form className="card" onSubmit={save} aria-label={isNew ? "New organisation" : `Edit ${initial.slug}`}>
      <h2>{isNew ? "New organisation" : `Edit ${initial.slug}`}</h2>
      {field("org-slug", "Slug", "slug")}
      {field("org-name", "Name", "name")}
      {field("org-uri-prefixes", "URI prefixes (one per line)", "uris", true)}
      {field("org-dns-suffixes", "DNS suffixes (one per line)", "dns", true)}
      {field("org-email-domains", "Email domains (one per line)", "emails", true)}
      {field("org-max-validity", "Maximum validity (days)", "max")}
      <div className="field checkbox">
        <input id="org-auto" type="checkbox" checked={f.auto} onChange={(e) => setF({ ...f, auto: e.target.checked })} data-testid="org-auto" />
        <label htmlFor="org-auto">Approve renewals automatically</label>
      </div>
      <ErrorBox error={error} />
      <div className="buttons">
        <button type="submit" className="primary" disabled={busy} data-testid="save-org">
          Save
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function RevocationPage() {
  const r = useLoad(() => api<Revocation>("/api/v1/revocation"), []);
  const d = r.data;
  return (
    <section>
      <h1>Revocation status</h1>
      <ErrorBox error={r.error} />
      {!d ? (
        r.loading && <Loading />
      ) : (
        <>
          <h2>CRLs</h2>
          <div className="table-wrap">
            <table data-testid="crl-table">
              <thead>
                <tr>
                  <th scope="col">Issuer</th>
                  <th scope="col">CRL number</th>
                  <th scope="col">This update</th>
                  <th scope="col">Next update</th>
                  <th scope="col">Entries</th>
                  <th scope="col">URL</th>
                </tr>
              </thead>
              <tbody>
                {(d.crls ?? []).map((c) => (
                  <tr key={c.issuer}>
                    <td>{c.issuer}</td>
                    <td data-testid={`crl-number-${c.issuer}`}>{String(c.number)}</td>
                    <td>{fmtDate(c.this_update)}</td>
                    <td>{fmtDate(c.next_update)}</td>
                    <td>{c.entries}</td>
                    <td>
                      <a href={c.url}>{c.url}</a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {(d.crls ?? []).length === 0 && <p>No CRL has been published yet.</p>}
          <h2>What gateways fetch</h2>
          <dl className="details links" data-testid="published-urls">
            <dt>CA bundle</dt>
            <dd>
              <a href="/ca/bundle.pem">{location.origin}/ca/bundle.pem</a> — issuing CA and root: the trusted client CAs
            </dd>
            <dt>CRL bundle</dt>
            <dd>
              <a href={crlBundleURL(d.crls?.[0]?.url, location.origin)} data-testid="crl-bundle-url">
                {crlBundleURL(d.crls?.[0]?.url, location.origin)}
              </a>{" "}
              — both CRLs in PEM: what nginx, HAProxy and Envoy need, as they check every CA of the chain (docs/gateway.md)
            </dd>
            <dt>OCSP</dt>
            <dd>{d.ocsp?.url ?? `${location.origin}/ocsp`}</dd>
          </dl>
          <h2>OCSP responder</h2>
          <dl className="details" data-testid="ocsp-info">
            {d.ocsp ? (
              <>
                <dt>Responder certificate</dt>
                <dd>{d.ocsp.responder_subject}</dd>
                <dt>Serial</dt>
                <dd>
                  <code>{d.ocsp.serial}</code>
                </dd>
                <dt>Valid until</dt>
                <dd>{fmtDate(d.ocsp.not_after)}</dd>
                <dt>URL</dt>
                <dd>{d.ocsp.url}</dd>
              </>
            ) : (
              <>
                <dt>Responder certificate</dt>
                <dd>not ready yet: the responder certificate is being made</dd>
              </>
            )}
            <dt>Last revoke → published</dt>
            <dd data-testid="revoke-latency">{d.last_revoke_to_publish_ms == null ? "no revocation yet" : `${d.last_revoke_to_publish_ms} ms`}</dd>
          </dl>
        </>
      )}
    </section>
  );
}
