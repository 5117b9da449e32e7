// Automation: API tokens (create, the secret shown once, list, revoke) and,
// below them, the ACME bindings.
import { useState, type FormEvent } from "react";
import { api, type Me, type Page, type Token } from "../api";
import { CopyBlock, ErrorBox, Loading, fmtDate, useLoad } from "../components";
import { AcmeBindings } from "./AcmeBindings";

/** Tokens is the automation page: API tokens, then ACME bindings. */
export function Tokens({ me }: { me: Me }) {
  return (
    <>
      <h1>API tokens and ACME</h1>
      <ApiTokens />
      <AcmeBindings me={me} />
    </>
  );
}

function ApiTokens() {
  const list = useLoad(() => api<Page<Token> | Token[]>("/api/v1/tokens").then((r) => (Array.isArray(r) ? r : r.items)), []);
  const [name, setName] = useState("");
  const [ttl, setTtl] = useState("90");
  const [created, setCreated] = useState<Token | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function create(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setCreated(await api<Token>("/api/v1/tokens", { body: { name: name.trim(), ttl_days: Number(ttl) } }));
      setName("");
      list.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  async function remove(id: string) {
    setError(null);
    try {
      await api(`/api/v1/tokens/${encodeURIComponent(id)}`, { method: "DELETE" });
      list.reload();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <section>
      <h2>API tokens</h2>
      <p>Tokens let scripts use the API with your role and organisation (header <code>Authorization: Bearer …</code>).</p>
      <form className="row" onSubmit={create} aria-label="Create a token">
        <div className="field grow">
          <label htmlFor="token-name">Name</label>
          <input id="token-name" value={name} onChange={(e) => setName(e.target.value)} required data-testid="token-name" />
        </div>
        <div className="field">
          <label htmlFor="token-ttl">Expires after (days)</label>
          <input id="token-ttl" type="number" min={1} max={365} value={ttl} onChange={(e) => setTtl(e.target.value)} data-testid="token-ttl" />
        </div>
        <button type="submit" className="primary" disabled={busy || name.trim() === ""} data-testid="create-token">
          Create token
        </button>
      </form>
      {created?.token && (
        <div className="card" role="status" data-testid="new-token">
          <p>
            <strong>Copy this token now: it is shown only once.</strong>
          </p>
          <CopyBlock label={`Token ${created.name}`} text={created.token} testid="new-token-value" />
          <button type="button" className="small" onClick={() => setCreated(null)}>
            I have copied it
          </button>
        </div>
      )}
      <ErrorBox error={error || list.error} />
      {list.loading && !list.data ? (
        <Loading />
      ) : (list.data ?? []).length === 0 ? (
        <p>No tokens.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="token-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">Revoke</th>
              </tr>
            </thead>
            <tbody>
              {(list.data ?? []).map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td>{fmtDate(t.created_at)}</td>
                  <td>{fmtDate(t.expires_at)}</td>
                  <td>
                    <button type="button" className="danger small" onClick={() => remove(t.id)} aria-label={`Revoke token ${t.name}`} data-testid={`delete-token-${t.id}`}>
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
