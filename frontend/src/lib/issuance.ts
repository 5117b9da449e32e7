// Where an approved request's issuance stands, in words.
import type { CertRequest } from "../api";

/** issuanceText says where an approved request's issuance stands. */
export function issuanceText(r: Pick<CertRequest, "issuance" | "failure_reason">): string {
  if (r.issuance === "pending") return "approved — waiting for the HSM: the certificate is recorded and will be issued when the HSM is available";
  if (r.issuance === "failed") return `approved — issuance failed${r.failure_reason ? `: ${r.failure_reason}` : ""}`;
  return "approved — the certificate is being issued";
}
