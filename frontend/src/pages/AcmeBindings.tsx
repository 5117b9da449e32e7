// ACME external account bindings: a partner asks for one (scope and
// expiry), another admin approves it, the requester takes its credentials
// once, an admin or the organisation revokes it. One-time EST enrolment
// codes are made here too.
import { useState, type FormEvent } from "react";
import { api, type Me, type Page } from "../api";
import { CopyBlock, Dialog, ErrorBox, Loading, StateBadge, fmtDate, shortId, useLoad } from "../components";
import {
  approveBlock,
  bindingStatus,
  clientCommands,
  estCodeCommand,
  mayMakeCode,
  mayRevoke,
  mayTakeKey,
  type ACMEBinding,
  type BindingCredentials,
  type ESTCode,
} from "../lib/acme";

const base = "/api/v1/acme/bindings";

/** showOnce scrolls a shown-once box into view when it appears: it may open far from the button pressed. */
const showOnce = (el: HTMLElement | null) => el?.scrollIntoView({ block: "start" });

export function AcmeBindings({ me }: { me: Me }) {
  const list = useLoad(() => api<Page<ACMEBinding>>(base).then((r) => r.items ?? []), []);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState("");
  const [cred, setCred] = useState<BindingCredentials | null>(null);
  const [code, setCode] = useState<ESTCode | null>(null);
  const [revoking, setRevoking] = useState<ACMEBinding | null>(null);
  const now = new Date();

  async function act<T>(key: string, path: string, done: (v: T) => void) {
    setBusy(key);
    setError(null);
    try {
      done(await api<T>(path, { method: "POST" }));
      list.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy("");
    }
  }
  const path = (b: ACMEBinding, verb: string) => `${base}/${encodeURIComponent(b.id)}/${verb}`;

  return (
    <section id="acme" aria-labelledby="acme-title">
      <h2 id="acme-title">ACME bindings</h2>
      <p>
        An ACME client (certbot, lego, cert-manager) or an EST client needs an external account binding: a scope of DNS names of your organisation, asked for here and
        approved by an admin other than the person who asked. Orders inside the scope are then issued without further approval.
      </p>
      {me.role !== "auditor" && <AskForm me={me} onDone={list.reload} />}
      {cred && (
        <div className="card once" role="status" data-testid="binding-credentials" ref={showOnce}>
          <p>
            <strong>Store these credentials now: they are shown only once.</strong> certdesk cannot show the HMAC key again; a lost key means asking for a new binding.
          </p>
          <CopyBlock label="EAB key id" text={cred.eab_kid} testid="eab-kid" />
          <CopyBlock label="EAB HMAC key" text={cred.eab_hmac_key} testid="eab-hmac-key" />
          <CopyBlock label="ACME directory" text={cred.directory} testid="acme-directory" />
          <CopyBlock label="certbot" text={clientCommands(cred).certbot} testid="certbot-command" />
          <CopyBlock label="lego" text={clientCommands(cred).lego} testid="lego-command" />
          <button type="button" className="small" onClick={() => setCred(null)} data-testid="credentials-stored">
            I have stored them
          </button>
        </div>
      )}
      {code && (
        <div className="card once" role="status" data-testid="est-code" ref={showOnce}>
          <p>
            <strong>Copy this one-time EST code now: it is shown only once.</strong> A device enrols with it once, inside the binding's scope, before{" "}
            {fmtDate(code.expires_at)}: HTTP basic, user name <code>{code.username}</code>, the code as password.
          </p>
          <CopyBlock label="One-time code" text={code.code} testid="est-code-value" />
          <CopyBlock label="curl (RFC 7030 simpleenroll)" text={estCodeCommand(code)} testid="est-code-command" />
          <button type="button" className="small" onClick={() => setCode(null)}>
            I have copied it
          </button>
        </div>
      )}
      <ErrorBox error={error || list.error} />
      {list.loading && !list.data ? (
        <Loading />
      ) : (list.data ?? []).length === 0 ? (
        <p data-testid="no-bindings">No bindings.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="binding-table">
            <thead>
              <tr>
                <th scope="col">Binding</th>
                {me.role !== "partner" && <th scope="col">Organisation</th>}
                <th scope="col">Scope</th>
                <th scope="col">State</th>
                <th scope="col">Asked by</th>
                <th scope="col">Approved by</th>
                <th scope="col">Expires</th>
                {me.role !== "auditor" && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {(list.data ?? []).map((b) => {
                const blocked = approveBlock(b, me, now);
                const status = bindingStatus(b, now);
                return (
                  <tr key={b.id} data-testid={`binding-row-${b.id}`}>
                    <td>
                      {b.name || <em>unnamed</em>}
                      <br />
                      <code title={b.id}>{shortId(b.id)}</code>
                    </td>
                    {me.role !== "partner" && <td>{b.org}</td>}
                    <td>{b.dns_names.join(", ")}</td>
                    <td>
                      <StateBadge state={status} testid={`binding-state-${b.id}`} />
                      {b.key_shown_at && <div className="hint">key taken {fmtDate(b.key_shown_at)}</div>}
                    </td>
                    <td>{b.requested_by}</td>
                    <td>{b.approved_by ?? ""}</td>
                    <td>{fmtDate(b.expires_at)}</td>
                    {me.role !== "auditor" && (
                      <td className="actions">
                        {me.role === "admin" && status === "requested" && (
                          <>
                            <button
                              type="button"
                              className="primary small"
                              disabled={blocked !== null || busy !== ""}
                              title={blocked ?? undefined}
                              aria-describedby={blocked ? `approve-why-${b.id}` : undefined}
                              onClick={() => act<ACMEBinding>(`approve-${b.id}`, path(b, "approve"), () => undefined)}
                              data-testid={`approve-binding-${b.id}`}
                            >
                              Approve
                            </button>
                            {blocked && (
                              <div className="hint" id={`approve-why-${b.id}`} data-testid={`approve-why-${b.id}`}>
                                {blocked}
                              </div>
                            )}
                          </>
                        )}
                        {mayTakeKey(b, me, now) && (
                          <button
                            type="button"
                            className="primary small"
                            disabled={busy !== ""}
                            onClick={() => act<BindingCredentials>(`cred-${b.id}`, path(b, "credentials"), setCred)}
                            data-testid={`take-credentials-${b.id}`}
                          >
                            Take credentials (once)
                          </button>
                        )}
                        {mayMakeCode(b, me, now) && (
                          <button type="button" className="small" disabled={busy !== ""} onClick={() => act<ESTCode>(`code-${b.id}`, path(b, "est-codes"), setCode)} data-testid={`est-code-${b.id}`}>
                            One-time EST code
                          </button>
                        )}
                        {mayRevoke(b, me) && (
                          <button type="button" className="danger small" disabled={busy !== ""} onClick={() => setRevoking(b)} data-testid={`revoke-binding-${b.id}`}>
                            Revoke…
                          </button>
                        )}
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {revoking && (
        <Dialog title="Revoke this binding?" onClose={() => setRevoking(null)}>
          <p>
            Binding <strong>{revoking.name || shortId(revoking.id)}</strong> of {revoking.org} ({revoking.dns_names.join(", ")}). Its ACME accounts, EST clients and unused
            one-time codes are refused from now on; certificates already issued stay valid until revoked themselves. This cannot be undone.
          </p>
          <div className="row">
            <button type="button" onClick={() => setRevoking(null)} data-testid="revoke-binding-cancel">
              Cancel
            </button>
            <button
              type="button"
              className="danger"
              disabled={busy !== ""}
              onClick={() => {
                const b = revoking;
                setRevoking(null);
                act<ACMEBinding>(`revoke-${b.id}`, path(b, "revoke"), () => undefined);
              }}
              data-testid="revoke-binding-confirm"
            >
              Revoke binding
            </button>
          </div>
        </Dialog>
      )}
    </section>
  );
}

/** AskForm asks for a binding: a name, its DNS names or *.suffix patterns, and its lifetime. */
function AskForm({ me, onDone }: { me: Me; onDone: () => void }) {
  const [name, setName] = useState("");
  const [names, setNames] = useState("");
  const [days, setDays] = useState("90");
  const [org, setOrg] = useState(me.org);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [asked, setAsked] = useState("");
  const dnsNames = names.split(/[\s,]+/).filter((n) => n !== "");

  async function ask(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setAsked("");
    try {
      const body: Record<string, unknown> = { name: name.trim(), dns_names: dnsNames, expires_days: Number(days) };
      if (me.role === "admin" && org.trim() !== "") body.org = org.trim();
      const b = await api<ACMEBinding>(base, { body });
      setAsked(b.id);
      setName("");
      setNames("");
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return (
    <form className="card" onSubmit={ask} aria-label="Ask for a binding">
      <h3>Ask for a binding</h3>
      <div className="row">
        <div className="field">
          <label htmlFor="binding-name">Name</label>
          <input id="binding-name" value={name} maxLength={200} onChange={(e) => setName(e.target.value)} placeholder="billing hosts" data-testid="binding-name" />
        </div>
        <div className="field grow">
          <label htmlFor="binding-names">DNS names (exact names, or *.suffix for every name below it)</label>
          <input id="binding-names" value={names} onChange={(e) => setNames(e.target.value)} required placeholder="*.billing.acme.example" data-testid="binding-names" />
        </div>
        <div className="field">
          <label htmlFor="binding-days">Expires after (days, at most 365)</label>
          <input id="binding-days" type="number" min={1} max={365} value={days} onChange={(e) => setDays(e.target.value)} data-testid="binding-days" />
        </div>
        {me.role === "admin" && (
          <div className="field">
            <label htmlFor="binding-org">Organisation</label>
            <input id="binding-org" value={org} onChange={(e) => setOrg(e.target.value)} required data-testid="binding-org" />
          </div>
        )}
      </div>
      <button type="submit" className="primary" disabled={busy || dnsNames.length === 0} data-testid="ask-binding">
        Ask for the binding
      </button>
      {asked && (
        <p role="status" data-testid="binding-asked">
          Asked for binding <code>{shortId(asked)}</code>: an admin other than you approves it; then take its credentials here, once.
        </p>
      )}
      <ErrorBox error={error} testid="binding-error" />
    </form>
  );
}
