// Downloads for an issued certificate: PEM, chain, CA bundle (buttons and
// stable URLs for a token), and (when this browser generated the key) the
// key encrypted or a PKCS#12 bundle; plus, while the certificate is valid,
// snippets that show how to use them.
import { useEffect, useState } from "react";
import { fetchText, saveFile } from "../api";
import { CopyBlock, ErrorBox } from "../components";
import { buildPKCS12, encryptPrivateKey } from "../lib/export";
import { passphraseProblem } from "../lib/forms";
import { downloadLinks, snippets } from "../lib/pages";
import { forgetKey, loadKey } from "../lib/keystore";

/** Downloads offers certificate certId's files; usable is false for a revoked or expired certificate, which gets no usage snippets. */
export function Downloads({ certId, requestId, usable = true }: { certId: string; requestId?: string; usable?: boolean }) {
  const [error, setError] = useState<unknown>(null);
  const [keys, setKeys] = useState<CryptoKeyPair | null>(null);
  const [keyLooked, setKeyLooked] = useState(false);
  const [pass, setPass] = useState("");
  const [confirm, setConfirm] = useState("");
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState("");
  const base = `/api/v1/certificates/${encodeURIComponent(certId)}`;

  useEffect(() => {
    if (!requestId) return;
    loadKey(requestId)
      .then(setKeys, () => setKeys(null))
      .finally(() => setKeyLooked(true));
  }, [requestId]);

  async function download(path: string, name: string) {
    setError(null);
    try {
      saveFile(name, await fetchText(path), "application/x-pem-file");
    } catch (e) {
      setError(e);
    }
  }

  const passProblem = passphraseProblem(pass, confirm);
  async function downloadKey(kind: "pkcs8" | "p12") {
    if (!keys || passProblem) return;
    setBusy(true);
    setError(null);
    try {
      if (kind === "pkcs8") {
        saveFile(`certdesk-${certId}.key`, await encryptPrivateKey(keys.privateKey, pass), "application/x-pem-file");
      } else {
        const chain = await fetchText(`${base}/chain`);
        saveFile(`certdesk-${certId}.p12`, await buildPKCS12(keys.privateKey, chain, pass), "application/x-pkcs12");
      }
      setDone(kind === "pkcs8" ? "Encrypted key downloaded." : "PKCS#12 bundle downloaded.");
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  const s = snippets(certId, location.origin, !!keys);
  const links = downloadLinks(certId, location.origin);
  return (
    <section aria-labelledby="downloads-h">
      <h2 id="downloads-h">Downloads</h2>
      <div className="buttons">
        <button type="button" onClick={() => download(`${base}/pem`, `certdesk-${certId}.pem`)} data-testid="download-cert">
          Certificate (PEM)
        </button>
        <button type="button" onClick={() => download(`${base}/chain`, `certdesk-${certId}-chain.pem`)} data-testid="download-chain">
          Chain (leaf + issuing CA)
        </button>
        <button type="button" onClick={() => download("/ca/bundle.pem", "certdesk-ca-bundle.pem")} data-testid="download-bundle">
          CA bundle
        </button>
      </div>
      <dl className="details links" data-testid="download-urls">
        <dt>Certificate</dt>
        <dd>
          <code>{links.pem}</code>
        </dd>
        <dt>Chain</dt>
        <dd>
          <code>{links.chain}</code>
        </dd>
        <dt>CA bundle</dt>
        <dd>
          <code>{links.bundle}</code>
        </dd>
      </dl>
      <p className="hint">These URLs are stable: a signed-in browser or an API token (Authorization: Bearer) can fetch them, e.g. from a server.</p>
      {usable && <CopyBlock label="fetch with an API token" text={s.fetch} testid="snippet-fetch" />}
      {usable && keyLooked && !keys && (
        <p className="hint" data-testid="no-key-here">
          No private key here: certdesk never receives private keys. If you made the CSR yourself, the key is where you made it. If you generated the key in the portal, it is kept only in the browser where you did that (this browser has none for this request): download it
          there.
        </p>
      )}
      {keys && (
        <fieldset className="keybox" data-testid="key-download">
          <legend>Your private key (kept in this browser)</legend>
          <p className="hint">Choose a passphrase (at least 8 characters). It protects the file you download; it is not sent anywhere.</p>
          <div className="row">
            <div className="field">
              <label htmlFor="pass">Passphrase</label>
              <input id="pass" type="password" autoComplete="new-password" value={pass} onChange={(e) => setPass(e.target.value)} data-testid="passphrase-input" />
            </div>
            <div className="field">
              <label htmlFor="pass2">Passphrase again</label>
              <input id="pass2" type="password" autoComplete="new-password" value={confirm} onChange={(e) => setConfirm(e.target.value)} data-testid="passphrase-confirm" />
            </div>
          </div>
          {pass !== "" && passProblem && (
            <p className="hint" aria-live="polite">
              {passProblem}
            </p>
          )}
          <div className="buttons">
            <button type="button" disabled={!!passProblem || busy} onClick={() => downloadKey("pkcs8")} data-testid="download-key">
              Encrypted private key (PKCS#8)
            </button>
            <button type="button" disabled={!!passProblem || busy} onClick={() => downloadKey("p12")} data-testid="download-p12">
              PKCS#12 bundle (key + certificate + chain)
            </button>
            <button
              type="button"
              className="danger small"
              onClick={() => requestId && forgetKey(requestId).then(() => setKeys(null))}
              data-testid="forget-key"
            >
              Delete the key from this browser
            </button>
          </div>
          {done && (
            <p role="status" className="ok-text">
              {done}
            </p>
          )}
        </fieldset>
      )}
      <ErrorBox error={error} />
      {usable ? (
        <>
          <h3>How to use it</h3>
          <CopyBlock label="curl" text={s.curl} testid="snippet-curl" />
          <CopyBlock label="openssl s_client" text={s.openssl} testid="snippet-openssl" />
          <CopyBlock label="nginx (gateway side)" text={s.nginx} testid="snippet-nginx" />
        </>
      ) : (
        <p className="hint" data-testid="not-usable">
          This certificate is no longer valid: gateways refuse it. The files stay available for the record; request a new certificate to connect again.
        </p>
      )}
    </section>
  );
}
