// New request: paste, drop or pick a CSR (parsed and checked here before the
// server's preview answers), or generate the key in the browser. Nothing is
// sent while a problem remains; the private key is never sent at all.
import { useEffect, useRef, useState, type DragEvent, type FormEvent } from "react";
import { api, type Certificate, type CertRequest, type Me, type Org, type Page, type Preview } from "../api";
import { ErrorBox, ProblemList } from "../components";
import { parseCSR, type ParseResult } from "../lib/csr";
import { evaluateNewRequest } from "../lib/forms";
import { requestOrg } from "../lib/onboarding";
import type { Namespace, Problem } from "../lib/identity";
import { generateKeyAndCSR, KEY_CHOICES, type KeyChoice } from "../lib/keygen";
import { saveKey } from "../lib/keystore";
import { exampleIdentity, ignoredSANs } from "../lib/pages";
import { navigate, useLocation } from "../router";

const DEFAULT_MAX_VALIDITY = 90;

export function NewRequest({ me }: { me: Me }) {
  const { search } = useLocation();
  const renewOf = search.get("renew") ?? "";
  const [mode, setMode] = useState<"upload" | "generate">("upload");
  const [csrText, setCsrText] = useState("");
  const [parsed, setParsed] = useState<ParseResult | null>(null);
  const [identitiesText, setIdentitiesText] = useState("");
  const [validity, setValidity] = useState(String(DEFAULT_MAX_VALIDITY));
  const [note, setNote] = useState("");
  const [org, setOrg] = useState<Org | null>(null);
  const [orgs, setOrgs] = useState<Org[]>([]);
  // An admin belongs to no organisation and chooses the one the request is for.
  const [chosenOrg, setChosenOrg] = useState("");
  const target = requestOrg(me, chosenOrg);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewError, setPreviewError] = useState<unknown>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [keyChoice, setKeyChoice] = useState<KeyChoice>(KEY_CHOICES[0]);
  const [keys, setKeys] = useState<CryptoKeyPair | null>(null);
  const [dragging, setDragging] = useState(false);
  const parseSeq = useRef(0);

  // The organisation's namespace and maximum validity, when the API lets us read them.
  useEffect(() => {
    api<Page<Org> | Org[]>("/api/v1/orgs")
      .then((r) => {
        const list = Array.isArray(r) ? r : r.items;
        setOrgs(list);
        const mine = list.find((o) => o.slug === target.org) ?? null;
        setOrg(mine);
        if (mine?.max_validity_days) setValidity((v) => (Number(v) > mine.max_validity_days ? String(mine.max_validity_days) : v));
      })
      .catch(() => setOrg(null));
  }, [target.org]);

  // Renewal: the same identities as the certificate being renewed.
  useEffect(() => {
    if (!renewOf) return;
    api<Certificate>(`/api/v1/certificates/${encodeURIComponent(renewOf)}`)
      .then((c) => setIdentitiesText(c.identities.join("\n")))
      .catch(setError);
  }, [renewOf]);

  async function takeCSR(input: string | Uint8Array) {
    const seq = ++parseSeq.current;
    setPreview(null);
    setPreviewError(null);
    const r = await parseCSR(input);
    if (seq !== parseSeq.current) return;
    setParsed(r);
    // A file replaces what the text box showed, also when it is not a CSR.
    if (typeof input !== "string") setCsrText(r.ok ? r.info.pem : "");
  }

  const namespace: Namespace | undefined = org ?? undefined;
  const verdict = evaluateNewRequest({
    parsed,
    identitiesText,
    validityDays: validity,
    maxValidityDays: org?.max_validity_days || DEFAULT_MAX_VALIDITY,
    namespace,
    serverProblems: preview?.problems,
  });
  const identitiesKey = verdict.identities.join("\n");

  // The server's verdict, asked only for a CSR the browser could read.
  useEffect(() => {
    if (!parsed?.ok) return;
    const t = setTimeout(() => {
      if (target.problem) return;
      api<Preview>("/api/v1/requests/preview", { body: { csr: parsed.info.pem, identities: verdict.identities, ...(me.role === "admin" ? { org: target.org } : {}) } })
        .then((p) => {
          setPreview({ ...p, problems: p.problems ?? [] });
          setPreviewError(null);
        })
        .catch((e) => setPreviewError(e));
    }, 300);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [parsed, identitiesKey, target.org]);

  function onFile(files: FileList | null) {
    const f = files?.[0];
    if (!f) return;
    f.arrayBuffer().then((b) => takeCSR(new Uint8Array(b)));
  }
  function onDrop(e: DragEvent) {
    e.preventDefault();
    setDragging(false);
    onFile(e.dataTransfer.files);
  }

  async function generate() {
    setError(null);
    const ids = verdict.identities;
    if (ids.length === 0) {
      setError(new Error("enter the identities first; they go into the CSR as SANs"));
      return;
    }
    setBusy(true);
    try {
      const g = await generateKeyAndCSR(keyChoice, ids);
      setKeys(g.keys);
      setCsrText(g.csrPem);
      await takeCSR(g.csrPem);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!verdict.canSubmit || !verdict.csr || busy || target.problem) return;
    setBusy(true);
    setError(null);
    try {
      const body: Record<string, unknown> = { csr: verdict.csr.pem, identities: verdict.identities, validity_days: verdict.validityDays, note };
      if (renewOf) body.renewal_of = renewOf;
      if (me.role === "admin") body.org = target.org;
      const r = await api<CertRequest>("/api/v1/requests", { body });
      if (keys) await saveKey(r.id, keys);
      navigate(`/requests/${r.id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  // Problems are shown once there is something to check, not on an empty form.
  const touched = csrText.trim() !== "" || identitiesText.trim() !== "" || keys !== null || parsed !== null;
  const example = exampleIdentity(org);
  const localProblems: Problem[] = verdict.problems.filter((p) => !preview?.problems.some((q) => q.rule === p.rule && q.reason === p.reason));
  const info = parsed?.ok ? parsed.info : null;

  return (
    <section>
      <h1>{renewOf ? "Renew certificate" : "New certificate request"}</h1>
      <div role="tablist" aria-label="How to provide the key" className="tabs">
        <button type="button" role="tab" aria-selected={mode === "upload"} onClick={() => setMode("upload")} data-testid="mode-upload">
          I have a CSR
        </button>
        <button type="button" role="tab" aria-selected={mode === "generate"} onClick={() => setMode("generate")} data-testid="mode-generate">
          Generate a key in this browser
        </button>
      </div>
      <form onSubmit={submit} noValidate>
        {me.role === "admin" && (
          <div className="field">
            <label htmlFor="request-org">Organisation (the certificate is for)</label>
            <select id="request-org" value={chosenOrg} onChange={(e) => setChosenOrg(e.target.value)} aria-describedby="request-org-hint" data-testid="request-org">
              <option value="">Choose an organisation…</option>
              {orgs.map((o) => (
                <option key={o.slug} value={o.slug}>
                  {o.name} ({o.slug})
                </option>
              ))}
            </select>
            <p id="request-org-hint" className="hint">
              As an admin you belong to no organisation: the request is made for the one you choose, and another admin must approve it.
            </p>
          </div>
        )}
        <div className="field">
          <label htmlFor="identities">Identities (one per line: URI such as spiffe://…, DNS name, or email){mode === "upload" ? "; leave empty to use the CSR's SANs" : ""}</label>
          <textarea
            id="identities"
            rows={3}
            value={identitiesText}
            placeholder={example ? `e.g. ${example}` : undefined}
            onChange={(e) => setIdentitiesText(e.target.value)}
            data-testid="identities-input"
            spellCheck={false}
          />
          {org && (
            <p className="hint">
              Allowed for {org.name}: {[...(org.uri_prefixes ?? []), ...(org.dns_suffixes ?? []).map((s) => `*.${s}`), ...(org.email_domains ?? []).map((d) => `*@${d.replace(/^@/, "")}`)].join(", ") || "nothing yet"}
            </p>
          )}
        </div>

        {mode === "upload" ? (
          <div className={`dropzone${dragging ? " dragging" : ""}`} onDragOver={(e) => { e.preventDefault(); setDragging(true); }} onDragLeave={() => setDragging(false)} onDrop={onDrop} data-testid="csr-dropzone">
            <label htmlFor="csr">CSR (PEM) — paste it, drop a file here, or pick one</label>
            <textarea
              id="csr"
              rows={8}
              value={csrText}
              spellCheck={false}
              placeholder="-----BEGIN CERTIFICATE REQUEST-----"
              onChange={(e) => {
                setCsrText(e.target.value);
                setKeys(null);
                void takeCSR(e.target.value);
              }}
              data-testid="csr-input"
            />
            <label htmlFor="csr-file" className="file-label">
              Pick a CSR file (.csr, .pem, .der)
            </label>
            <input id="csr-file" type="file" accept=".csr,.pem,.der,.req,application/pkcs10" onChange={(e) => {
                setKeys(null);
                onFile(e.target.files);
                // Forget the pick so that picking the same file again (after editing it) reads it again.
                e.target.value = "";
              }} data-testid="csr-file" />
          </div>
        ) : (
          <div className="generate">
            <div className="field">
              <label htmlFor="key-type">Key type</label>
              <select id="key-type" value={keyChoice} onChange={(e) => setKeyChoice(e.target.value as KeyChoice)} data-testid="key-type">
                {KEY_CHOICES.map((k) => (
                  <option key={k} value={k}>
                    {k}
                    {k === KEY_CHOICES[0] ? " (recommended)" : ""}
                  </option>
                ))}
              </select>
            </div>
            <button type="button" onClick={generate} disabled={busy} data-testid="generate-key">
              {keys ? "Generate a new key" : "Generate key and CSR"}
            </button>
            <p className="hint">The private key is made here by your browser, stays in this browser (IndexedDB) and is never sent. After issuance you download it encrypted with a passphrase, or as a PKCS#12 bundle.</p>
            {keys && (
              <p className="ok-text" role="status" data-testid="key-generated">
                Key generated; its CSR is shown below.
              </p>
            )}
          </div>
        )}

        {parsed && !parsed.ok && (
          <div role="alert" className="error" data-testid="csr-error">
            This is not a usable CSR: {parsed.problem.reason} <code className="rule">{parsed.problem.rule}</code>
          </div>
        )}
        {info && (
          <div className="preview" data-testid="csr-preview" aria-live="polite">
            <h2>What the CSR says</h2>
            <dl>
              <dt>Subject</dt>
              <dd data-testid="csr-subject">{info.subject || "(empty)"}</dd>
              <dt>SANs</dt>
              <dd data-testid="csr-sans">
                {info.sans.join(", ") || "(none)"}
                {verdict.identities.length > 0 && ignoredSANs(info.sans, verdict.identities).length > 0 && (
                  <p className="hint" data-testid="ignored-sans">
                    Not in the certificate: {ignoredSANs(info.sans, verdict.identities).join(", ")} — the CA uses only the identities above.
                  </p>
                )}
              </dd>
              <dt>Key</dt>
              <dd data-testid="csr-key-type">{info.keyType}</dd>
              <dt>Signature</dt>
              <dd data-testid="csr-signature">
                {info.signatureAlgorithm} {info.signatureValid === true ? "(verified)" : info.signatureValid === false ? "(does not verify)" : "(checked by the server)"}
              </dd>
              {preview && (
                <>
                  <dt>The server read</dt>
                  <dd data-testid="server-preview">
                    key {preview.key_type}, signature {preview.signature_algorithm}. The certificate's subject and SANs come from the identities you request, not from the CSR.
                  </dd>
                </>
              )}
            </dl>
            <p className="hint">The CA issues for the identities you request, within your organisation's namespace; only the CSR's public key is used.</p>
          </div>
        )}

        <div className="row">
          <div className="field">
            <label htmlFor="validity">Validity (days)</label>
            <input id="validity" type="number" min={1} max={org?.max_validity_days || DEFAULT_MAX_VALIDITY} value={validity} onChange={(e) => setValidity(e.target.value)} data-testid="validity-input" />
          </div>
          <div className="field grow">
            <label htmlFor="note">Note for the approver</label>
            <input id="note" type="text" value={note} onChange={(e) => setNote(e.target.value)} data-testid="note-input" />
          </div>
        </div>

        <h2>Policy check</h2>
        {touched || target.problem ? (
          <ProblemList
            problems={[...(target.problem ? [{ rule: "org", reason: target.problem }] : []), ...(touched ? [...localProblems, ...(preview?.problems ?? [])] : [])]}
          />
        ) : (
          <p className="hint" data-testid="policy-waiting">
            Enter the identities and a CSR (or generate a key): the check runs as you type.
          </p>
        )}
        {previewError ? <ErrorBox error={previewError} testid="preview-error" /> : null}
        <ErrorBox error={error} />
        {keys && (
          <p className="warning" data-testid="key-browser-only">
            The private key exists only in this browser (this profile, on this machine): after approval, download it from here. Another browser or device
            will have the certificate but no key.
          </p>
        )}
        <p className="hint">After you submit, an administrator approves or rejects the request; its page shows the decision and, once issued, the downloads.</p>
        <button type="submit" className="primary" disabled={!verdict.canSubmit || busy || !!target.problem} aria-disabled={!verdict.canSubmit || busy || !!target.problem} data-testid="submit-request">
          {busy ? "Working…" : "Submit request"}
        </button>
      </form>
    </section>
  );
}
