// The auditor's history: filters, the events with their chain position,
// CSV/JSON export, the chain verification and the weekly charts.
import { Fragment, useState, type FormEvent } from "react";
import { api, eventDetail, type AuditEvent, type Page, type Stats, type Verify } from "../api";
import { BarChart, ErrorBox, Loading, fmtDate, useLoad } from "../components";
import { queryString, toRFC3339 } from "../lib/forms";

const emptyFilters = { actor: "", org: "", action: "", object_id: "", from: "", to: "" };

export function Audit() {
  const [draft, setDraft] = useState(emptyFilters);
  const [filters, setFilters] = useState(emptyFilters);
  const params = { ...filters, from: toRFC3339(filters.from), to: toRFC3339(filters.to) };
  const qs = queryString(params);
  const [extra, setExtra] = useState<{ items: AuditEvent[]; next: string | null }>({ items: [], next: null });
  const page = useLoad(() => {
    setExtra({ items: [], next: null });
    return api<Page<AuditEvent>>(`/api/v1/audit/events${qs}`);
  }, [qs]);
  const [selected, setSelected] = useState<AuditEvent | null>(null);
  const [verify, setVerify] = useState<Verify | null>(null);
  const [verifyError, setVerifyError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [moreError, setMoreError] = useState<unknown>(null);
  const stats = useLoad(() => api<Stats>("/api/v1/stats"), []);

  const items = [...(page.data?.items ?? []), ...extra.items];
  const next = extra.next ?? page.data?.next ?? "";

  async function loadMore() {
    try {
      const p = await api<Page<AuditEvent>>(`/api/v1/audit/events${queryString({ ...params, cursor: next })}`);
      setExtra((x) => ({ items: [...x.items, ...p.items], next: p.next || "" }));
    } catch (e) {
      setMoreError(e);
    }
  }
  async function runVerify() {
    setBusy(true);
    setVerifyError(null);
    try {
      setVerify(await api<Verify>("/api/v1/audit/verify"));
    } catch (e) {
      setVerifyError(e);
    } finally {
      setBusy(false);
    }
  }
  const apply = (e: FormEvent) => {
    e.preventDefault();
    setFilters(draft);
  };
  const input = (k: keyof typeof emptyFilters, label: string, type = "text") => (
    <div className="field">
      <label htmlFor={`a-${k}`}>{label}</label>
      <input id={`a-${k}`} type={type} value={draft[k]} onChange={(e) => setDraft({ ...draft, [k]: e.target.value })} data-testid={`audit-${k}`} />
    </div>
  );
  return (
    <section>
      <h1>Audit history</h1>
      <div className="verify">
        <button type="button" onClick={runVerify} disabled={busy} data-testid="verify-chain">
          Verify the hash chain
        </button>
        {verify && (
          <p className={verify.ok ? "ok-text" : "error"} role="status" data-testid="chain-status">
            {verify.ok
              ? `Chain intact: ${verify.events} events, head ${verify.head_hash.slice(0, 16)}…` +
                (verify.checkpoints
                  ? `; ${verify.checkpoints} signed checkpoint${verify.checkpoints === 1 ? "" : "s"} verified, the last at event ${verify.last_checkpoint_seq}`
                  : "; no signed checkpoint yet")
              : `Chain broken at event ${verify.first_bad_seq}: ${verify.problem ?? "altered, removed or inserted"}`}
          </p>
        )}
        <ErrorBox error={verifyError} />
      </div>
      <h2>Activity</h2>
      <ErrorBox error={stats.error} />
      {stats.data && (
        <div className="charts">
          <BarChart title="Certificates issued per week" data={stats.data.issued_per_week ?? []} testid="chart-issued" />
          <BarChart title="Revocations per week" data={stats.data.revoked_per_week ?? []} testid="chart-revoked" className="revoked" />
          <BarChart title="Certificates expiring per week (next 90 days)" data={stats.data.expiring_per_week ?? []} testid="chart-expiring" className="expiring" />
        </div>
      )}
      <h2>Events</h2>
      <form className="filters" role="search" aria-label="Filter audit events" onSubmit={apply}>
        {input("actor", "Actor")}
        {input("org", "Organisation")}
        {input("action", "Action")}
        {input("object_id", "Object id")}
        {input("from", "From", "datetime-local")}
        {input("to", "To", "datetime-local")}
        <button type="submit" data-testid="audit-filter">
          Filter
        </button>
        <button
          type="button"
          onClick={() => {
            setDraft(emptyFilters);
            setFilters(emptyFilters);
          }}
        >
          Clear
        </button>
      </form>
      <p className="buttons">
        <a className="button" href={`/api/v1/audit/export${queryString({ ...params, format: "csv" })}`} download data-testid="export-csv">
          Export CSV
        </a>
        <a className="button" href={`/api/v1/audit/export${queryString({ ...params, format: "json" })}`} download data-testid="export-json">
          Export JSON
        </a>
      </p>
      <ErrorBox error={page.error || moreError} />
      {page.loading && !page.data ? (
        <Loading />
      ) : (
        <div className="table-wrap">
          <table className="audit" data-testid="audit-table">
            <thead>
              <tr>
                <th scope="col">Seq</th>
                <th scope="col">Time</th>
                <th scope="col">Actor</th>
                <th scope="col">Org</th>
                <th scope="col">Action</th>
                <th scope="col">Object</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <Fragment key={e.seq}>
                  <tr className={selected?.seq === e.seq ? "selected" : ""} data-testid={`audit-row-${e.seq}`}>
                  <td>{e.seq}</td>
                  <td className="nowrap">{fmtDate(e.time)}</td>
                  <td>
                    {e.actor} <span className="muted">({e.role})</span>
                  </td>
                  <td>{e.org}</td>
                  <td>{e.action}</td>
                  <td>
                    {e.object_type} <code>{e.object_id}</code>
                  </td>
                  <td>
                    <button
                      type="button"
                      className="small"
                      onClick={() => setSelected(selected?.seq === e.seq ? null : e)}
                      aria-expanded={selected?.seq === e.seq}
                      aria-label={`${selected?.seq === e.seq ? "Hide" : "Show"} event ${e.seq}`}
                      data-testid={`audit-show-${e.seq}`}
                    >
                      {selected?.seq === e.seq ? "Hide" : "Show"}
                    </button>
                  </td>
                </tr>
                  {selected?.seq === e.seq && (
                    <tr className="detail-row" data-testid={`audit-detail-row-${e.seq}`}>
                      <td colSpan={7}>
                        <div className="event-detail" aria-live="polite" data-testid="audit-detail">
                          <h3>Event {selected.seq}</h3>
                          <dl className="details">
                            <dt>Time</dt>
                            <dd>{fmtDate(selected.time)}</dd>
                            <dt>Actor</dt>
                            <dd>
                              {selected.actor} ({selected.role}) from {selected.source}
                            </dd>
                            <dt>Action</dt>
                            <dd>
                              {selected.action} on {selected.object_type} {selected.object_id}
                            </dd>
                            <dt>Chain position</dt>
                            <dd>seq {selected.seq}</dd>
                            <dt>Previous hash</dt>
                            <dd>
                              <code className="hash">{selected.prev_hash}</code>
                            </dd>
                            <dt>Hash</dt>
                            <dd>
                              <code className="hash">{selected.hash}</code>
                            </dd>
                          </dl>
                          <pre>{JSON.stringify(eventDetail(selected), null, 2)}</pre>
                          <button type="button" className="small" onClick={() => setSelected(null)}>
                            Close
                          </button>
                        </div>
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
          {items.length === 0 && <p>No events match.</p>}
        </div>
      )}
      {next && (
        <button type="button" onClick={loadMore} data-testid="audit-more">
          Load more
        </button>
      )}
    </section>
  );
}
