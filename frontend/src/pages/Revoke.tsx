// The revoke dialog: a reason picker limited to what the role may use, and
// for keyCompromise an explicit typed confirmation (issue 4).
import { useState } from "react";
import { api, type Certificate, type Me } from "../api";
import { Dialog, ErrorBox } from "../components";
import { canConfirmRevoke, KEY_COMPROMISE_CONFIRMATION, REASON_LABELS, revokeReasonsFor, type RevocationReason } from "../lib/forms";

export function RevokeDialog({ me, cert, onClose, onDone }: { me: Me; cert: Certificate; onClose: () => void; onDone: (c: Certificate) => void }) {
  const [reason, setReason] = useState<RevocationReason | "">("");
  const [typed, setTyped] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const reasons = revokeReasonsFor(me.role);

  async function revoke() {
    if (!canConfirmRevoke(reason, typed)) return;
    setBusy(true);
    setError(null);
    try {
      const c = await api<Certificate>(`/api/v1/certificates/${encodeURIComponent(cert.id)}/revoke`, { body: { reason } });
      onDone(c && c.id ? c : { ...cert, state: "revoked", revocation_reason: reason as RevocationReason });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Dialog title={`Revoke certificate ${cert.serial}`} onClose={onClose}>
      <p>
        Revoking is final: gateways that check the CRL or OCSP refuse this certificate within seconds. Identities: {cert.identities.join(", ")}.
      </p>
      <div className="field">
        <label htmlFor="revoke-reason">Reason</label>
        <select id="revoke-reason" value={reason} onChange={(e) => setReason(e.target.value as RevocationReason)} data-testid="revoke-reason">
          <option value="">Choose a reason…</option>
          {reasons.map((r) => (
            <option key={r} value={r}>
              {REASON_LABELS[r]}
            </option>
          ))}
        </select>
      </div>
      {reason === "keyCompromise" && (
        <div className="field warning">
          <label htmlFor="confirm-text">
            Key compromise tells every relying party the key is in someone else's hands. Type {KEY_COMPROMISE_CONFIRMATION} to confirm.
          </label>
          <input id="confirm-text" value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" data-testid="confirm-text" />
        </div>
      )}
      <ErrorBox error={error} />
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
