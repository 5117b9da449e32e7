// Admin page: users who signed in without an organisation (to assign),
// the members of each organisation (to remove), and invitations by e-mail.
import { useState, type FormEvent } from "react";
import { api, type Org, type Page } from "../api";
import { ErrorBox, Loading, fmtDate, useLoad } from "../components";
import { invitationStateText, invitationsPath, inviteEmailProblem, memberPath, userNote, type Invitation, type SeenUser } from "../lib/onboarding";

interface Membership {
  subject: string;
  org: string;
  created_by: string;
  created_at: string;
}

export function Users() {
  const orgs = useLoad(() => api<Page<Org>>("/api/v1/orgs").then((r) => r.items), []);
  const [changed, setChanged] = useState(0);
  const bump = () => setChanged((n) => n + 1);
  return (
    <section>
      <h1>Users and memberships</h1>
      <ErrorBox error={orgs.error} />
      <Unassigned orgs={orgs.data ?? []} changed={changed} onChange={bump} />
      <Members orgs={orgs.data ?? []} changed={changed} onChange={bump} />
      <Invitations orgs={orgs.data ?? []} />
    </section>
  );
}

function OrgSelect({ id, orgs, value, onChange, label }: { id: string; orgs: Org[]; value: string; onChange: (v: string) => void; label: string }) {
  return (
    <select id={id} aria-label={label} value={value} onChange={(e) => onChange(e.target.value)} data-testid={id}>
      <option value="">Choose…</option>
      {orgs.map((o) => (
        <option key={o.slug} value={o.slug}>
          {o.name} ({o.slug})
        </option>
      ))}
    </select>
  );
}

function Unassigned({ orgs, changed, onChange }: { orgs: Org[]; changed: number; onChange: () => void }) {
  const users = useLoad(() => api<Page<SeenUser>>("/api/v1/users?unassigned=true").then((r) => r.items), [changed]);
  const [choice, setChoice] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState("");
  async function assign(u: SeenUser) {
    setBusy(u.subject);
    setError(null);
    try {
      await api(`/api/v1/orgs/${encodeURIComponent(choice[u.subject])}/members`, { body: { subject: u.subject } });
      onChange();
    } catch (e) {
      setError(e);
    } finally {
      setBusy("");
    }
  }
  const list = users.data ?? [];
  return (
    <>
      <h2>Signed in without an organisation</h2>
      <p className="hint">Partners whose identity provider sends no organisation claim. Assign each to their organisation; they are in at their next sign-in.</p>
      <ErrorBox error={users.error ?? error} />
      {users.loading && !users.data ? (
        <Loading />
      ) : list.length === 0 ? (
        <p data-testid="unassigned-empty">Nobody is waiting for an organisation.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="unassigned-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">E-mail</th>
                <th scope="col">Subject</th>
                <th scope="col">Last sign-in</th>
                <th scope="col">Organisation</th>
              </tr>
            </thead>
            <tbody>
              {list.map((u, i) => (
                <tr key={u.subject} data-testid={`unassigned-row-${u.subject}`}>
                  <td>
                    {u.name || "(no name)"}
                    {userNote(u) && <div className="hint">{userNote(u)}</div>}
                  </td>
                  <td>
                    {u.email || "(none)"} {u.email && (u.email_verified ? <span className="muted">verified</span> : <span className="muted">not verified</span>)}
                  </td>
                  <td>
                    <code>{u.subject}</code>
                  </td>
                  <td>{fmtDate(u.last_seen_at)}</td>
                  <td>
                    <OrgSelect id={`assign-org-${i}`} label={`Organisation for ${u.name || u.subject}`} orgs={orgs} value={choice[u.subject] ?? ""} onChange={(v) => setChoice({ ...choice, [u.subject]: v })} />{" "}
                      <button type="button" className="small primary" disabled={!choice[u.subject] || busy === u.subject} onClick={() => assign(u)} data-testid={`assign-${i}`}>
                        Assign
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function Members({ orgs, changed, onChange }: { orgs: Org[]; changed: number; onChange: () => void }) {
  const [slug, setSlug] = useState("");
  // Names and e-mails of the members, from their last sign-in.
  const people = useLoad(() => api<Page<SeenUser>>("/api/v1/users").then((r) => new Map(r.items.map((u) => [u.subject, u]))), [changed]);
  const members = useLoad(() => (slug ? api<Page<Membership>>(`/api/v1/orgs/${encodeURIComponent(slug)}/members`).then((r) => r.items) : Promise.resolve([])), [slug, changed]);
  const [error, setError] = useState<unknown>(null);
  async function remove(m: Membership) {
    if (!window.confirm(`Remove ${m.subject} from ${m.org}? Their sessions and API tokens for ${m.org} end now.`)) return;
    setError(null);
    try {
      await api(memberPath(m.org, m.subject), { method: "DELETE" });
      onChange();
    } catch (e) {
      setError(e);
    }
  }
  const list = members.data ?? [];
  return (
    <>
      <h2>Members</h2>
      <div className="row">
        <div className="field">
          <label htmlFor="members-org">Organisation</label>
          <OrgSelect id="members-org" label="Organisation" orgs={orgs} value={slug} onChange={setSlug} />
        </div>
      </div>
      <ErrorBox error={members.error ?? error} />
      {slug && !members.loading && list.length === 0 && <p data-testid="members-empty">No member was assigned to {slug} (members by organisation claim are not listed).</p>}
      {list.length > 0 && (
        <div className="table-wrap">
          <table data-testid="members-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">E-mail</th>
                <th scope="col">Subject</th>
                <th scope="col">Assigned by</th>
                <th scope="col">Since</th>
                <th scope="col">Remove</th>
              </tr>
            </thead>
            <tbody>
              {list.map((m, i) => (
                <tr key={m.subject} data-testid={`member-row-${m.subject}`}>
                  <td>{people.data?.get(m.subject)?.name || "(not signed in yet)"}</td>
                  <td>{people.data?.get(m.subject)?.email ?? ""}</td>
                  <td>
                    <code>{m.subject}</code>
                  </td>
                  <td>{m.created_by}</td>
                  <td>{fmtDate(m.created_at)}</td>
                  <td>
                    <button type="button" className="small danger" onClick={() => remove(m)} data-testid={`remove-member-${i}`}>
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function Invitations({ orgs }: { orgs: Org[] }) {
  const [slug, setSlug] = useState("");
  const [email, setEmail] = useState("");
  const [tick, setTick] = useState(0);
  const list = useLoad(() => (slug ? api<Page<Invitation>>(invitationsPath(slug)).then((r) => r.items) : Promise.resolve([])), [slug, tick]);
  const [error, setError] = useState<unknown>(null);
  const [tried, setTried] = useState(false);
  const problem = inviteEmailProblem(email);
  async function invite(e: FormEvent) {
    e.preventDefault();
    setTried(true);
    if (problem || !slug) return;
    setError(null);
    try {
      await api(invitationsPath(slug), { body: { email: email.trim() } });
      setEmail("");
      setTried(false);
      setTick((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  }
  async function withdraw(inv: Invitation) {
    setError(null);
    try {
      await api(invitationsPath(inv.org, inv.id), { method: "DELETE" });
      setTick((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  }
  return (
    <>
      <h2>Invitations</h2>
      <p className="hint">An invited partner joins the organisation at their first sign-in, if their identity provider says the address is verified. Invitations expire after 14 days.</p>
      <form className="row" onSubmit={invite} noValidate aria-label="Invite by e-mail">
        <div className="field">
          <label htmlFor="invite-org">Organisation</label>
          <OrgSelect id="invite-org" label="Organisation to invite to" orgs={orgs} value={slug} onChange={setSlug} />
        </div>
        <div className="field grow">
          <label htmlFor="invite-email">E-mail address</label>
          <input id="invite-email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} aria-invalid={tried && !!problem} aria-describedby="invite-problem" data-testid="invite-email" />
          {tried && problem && (
            <p id="invite-problem" className="hint danger" role="alert">
              {problem}
            </p>
          )}
        </div>
        <div className="field">
          <button type="submit" className="primary" disabled={!slug} data-testid="invite-submit">
            Invite
          </button>
        </div>
      </form>
      <ErrorBox error={list.error ?? error} />
      {(list.data ?? []).length > 0 && (
        <div className="table-wrap">
          <table data-testid="invitations-table">
            <thead>
              <tr>
                <th scope="col">E-mail</th>
                <th scope="col">State</th>
                <th scope="col">Expires</th>
                <th scope="col">Invited by</th>
                <th scope="col">Withdraw</th>
              </tr>
            </thead>
            <tbody>
              {(list.data ?? []).map((inv) => (
                <tr key={inv.id} data-testid={`invitation-row-${inv.email}`}>
                  <td>{inv.email}</td>
                  <td>{invitationStateText(inv)}</td>
                  <td>{fmtDate(inv.expires_at)}</td>
                  <td>{inv.created_by}</td>
                  <td>
                    {inv.state !== "accepted" && (
                      <button type="button" className="small" onClick={() => withdraw(inv)} data-testid={`withdraw-${inv.email}`}>
                        Withdraw
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
