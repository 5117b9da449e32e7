// The revoke dialog: a reason picker limited to what the server says the
// role may use (GET /api/v1/revocation/reasons), and for keyCompromise an
// explicit typed confirmation.
import { useState } from "react";
import { api, revocationReasons, type Certificate, type Me } from "../api";
import { Dialog, ErrorBox, Loading, useLoad } from "../components";
import { canConfirmRevoke, KEY_COMPROMISE_CONFIRMATION, reasonsFor, type RevocationReason } from "../lib/forms";

export function RevokeDialog({ me, cert, onClose, onDone }: { me: Me; cert: Certificate; onClose: () => void; onDone: (c: Certificate) => void }) {
  const all = useLoad(revocationReasons, []);
  const [reason, setReason] = useState<RevocationReason | "">("");
  const [typed, setTyped] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const reasons = all.data ? reasonsFor(all.data, me.role) : [];

  async function revoke() {
    if (!canConfirmRevoke(reason, typed)) return;
    setBusy(true);
    setError(null);
    try {
      const c = await api<Certificate>(`/api/v1/certificates/${encodeURIComponent(cert.id)}/revoke`, { body: { reason } });
      onDone(c && c.id ? c : { ...cert, state: "revoked", revocation_reason: reason });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  // The dialog is mounted again once the reasons are in, so that it
  // focuses the reason picker.
  return (
    <Dialog key={all.data ? "ready" : "loading"} title={`Revoke certificate ${cert.serial}`} onClose={onClose}>
      <p>
        Revoking is final: gateways that check the CRL or OCSP refuse this certificate within seconds. Identities: {cert.identities.join(", ")}.
      </p>
      {all.data ? (
        <div className="field">
          <label htmlFor="revoke-reason">Reason</label>
          <select id="revoke-reason" value={reason} onChange={(e) => setReason(e.target.value)} data-testid="revoke-reason">
            <option value="">Choose a reason…</option>
            {reasons.map((r) => (
              <option key={r.name} value={r.name}>
                {r.label}
              </option>
            ))}
          </select>
        </div>
      ) : (
        !all.error && <Loading what="Loading the revocation reasons" />
      )}
      {reason === "keyCompromise" && (
        <div className="field warning">
          <label htmlFor="confirm-text">
            Key compromise tells every relying party the key is in someone else's hands. Type {KEY_COMPROMISE_CONFIRMATION} to confirm.
          </label>
          <input id="confirm-text" value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" data-testid="confirm-text" />
        </div>
      )}
      <ErrorBox error={all.error ?? error} />
      <div className="buttons">
        <button type="button" className="danger" disabled={!canConfirmRevoke(reason, typed) || busy} onClick={revoke} data-testid="confirm-revoke">
          {busy ? "Revoking…" : "Revoke"}
        </button>
        <button type="button" onClick={onClose} data-testid="cancel-revoke">
          Cancel
        </button>
      </div>
    </Dialog>
  );
}
