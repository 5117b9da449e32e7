// Form logic kept out of the components so it can be tested without a DOM.
import type { CSRInfo, ParseResult } from "./csr";
import { checkIdentities, checkNamespace, splitIdentities, type Namespace, type Problem } from "./identity";

/** MIN_PASSPHRASE is the shortest passphrase the download forms accept. */
export const MIN_PASSPHRASE = 8;

/** Role is a signed-in user's role. */
export type Role = "partner" | "admin" | "auditor";

/** RevocationReason is an RFC 5280 §5.3.1 CRLReason name the API accepts. */
export type RevocationReason = string;

/** RevocationReasonInfo is one accepted reason, as GET /api/v1/revocation/reasons lists it. */
export interface RevocationReasonInfo {
  name: RevocationReason;
  /** code is the CRLReason code in CRLs and OCSP answers. */
  code: number;
  label: string;
  /** roles may revoke with this reason. */
  roles: Role[];
}

/** reasonsFor keeps the reasons the server lets role give, in the server's order. */
export function reasonsFor(all: RevocationReasonInfo[], role: Role): RevocationReasonInfo[] {
  return all.filter((r) => r.roles.includes(role));
}

/** reasonLabel is the words for a reason name, or the name itself when the list does not have it. */
export function reasonLabel(all: RevocationReasonInfo[] | undefined, name: RevocationReason): string {
  return all?.find((r) => r.name === name)?.label ?? name;
}

/** KEY_COMPROMISE_CONFIRMATION is what the user types to confirm a keyCompromise revocation. */
export const KEY_COMPROMISE_CONFIRMATION = "REVOKE";

/** canConfirmRevoke tells whether the confirm button of the revoke dialog is enabled. */
export function canConfirmRevoke(reason: RevocationReason | "", typed: string): boolean {
  if (reason === "") return false;
  if (reason === "keyCompromise") return typed.trim() === KEY_COMPROMISE_CONFIRMATION;
  return true;
}

/** NewRequestInput is the state of the new-request form. */
export interface NewRequestInput {
  parsed: ParseResult | null;
  identitiesText: string;
  validityDays: string;
  maxValidityDays: number;
  namespace?: Namespace;
  /** The server preview's problems, when it has answered. */
  serverProblems?: Problem[];
}

/** NewRequestVerdict says what the form shows and whether Submit is enabled. */
export interface NewRequestVerdict {
  csr: CSRInfo | null;
  identities: string[];
  validityDays: number;
  problems: Problem[];
  canSubmit: boolean;
}

/**
 * evaluateNewRequest gathers every problem the user must fix before the
 * request is sent: the CSR's, the identities', the validity's and the
 * server preview's. Identities default to the CSR's SANs.
 */
export function evaluateNewRequest(input: NewRequestInput): NewRequestVerdict {
  const problems: Problem[] = [];
  let csr: CSRInfo | null = null;
  if (!input.parsed) {
    problems.push({ rule: "csr", reason: "paste, drop or pick a CSR, or generate a key in the browser" });
  } else if (!input.parsed.ok) {
    problems.push(input.parsed.problem);
  } else {
    csr = input.parsed.info;
    problems.push(...csr.problems);
  }
  let identities = splitIdentities(input.identitiesText);
  if (identities.length === 0 && csr) identities = csr.sans;
  problems.push(...checkIdentities(identities));
  if (input.namespace) problems.push(...checkNamespace(identities, input.namespace));

  const days = Number(input.validityDays);
  if (!Number.isInteger(days) || days < 1) {
    problems.push({ rule: "validity", reason: "validity must be a whole number of days, at least 1" });
  } else if (days > input.maxValidityDays) {
    problems.push({ rule: "validity", reason: `validity of ${days} days exceeds the organisation's maximum of ${input.maxValidityDays}` });
  }
  for (const p of input.serverProblems ?? []) {
    if (!problems.some((q) => q.rule === p.rule && q.reason === p.reason)) problems.push(p);
  }
  return { csr, identities, validityDays: days, problems, canSubmit: problems.length === 0 };
}

/** passphraseProblem says why a download passphrase is not acceptable, or null. */
export function passphraseProblem(pass: string, confirm: string): string | null {
  if (pass.length < MIN_PASSPHRASE) return `the passphrase needs at least ${MIN_PASSPHRASE} characters`;
  if (pass !== confirm) return "the two passphrases differ";
  return null;
}

const DAY = 86_400_000;

/** daysUntil counts whole days from now to when (negative once past). */
export function daysUntil(when: string | Date, now: Date = new Date()): number {
  return Math.floor((new Date(when).getTime() - now.getTime()) / DAY);
}

/** ExpiryLevel classifies a certificate for the dashboard. */
export type ExpiryLevel = "expired" | "soon" | "ok";

/** EXPIRY_WARNING_DAYS is when the dashboard starts warning. */
export const EXPIRY_WARNING_DAYS = 30;

/** expiryLevel is "soon" within 30 days, "expired" once past. */
export function expiryLevel(notAfter: string, now: Date = new Date()): ExpiryLevel {
  const d = (new Date(notAfter).getTime() - now.getTime()) / DAY;
  if (d < 0) return "expired";
  if (d < EXPIRY_WARNING_DAYS) return "soon";
  return "ok";
}

/** bySoonestExpiry orders certificates: valid ones soonest first, then the rest. */
export function bySoonestExpiry<T extends { not_after: string; state: string }>(items: T[]): T[] {
  const rank = (s: string) => (s === "valid" ? 0 : 1);
  return [...items].sort((a, b) => rank(a.state) - rank(b.state) || new Date(a.not_after).getTime() - new Date(b.not_after).getTime());
}

/** queryString builds "?a=1&b=2" from the non-empty values (or "" when none). */
export function queryString(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && String(v) !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** toRFC3339 turns a <input type="datetime-local"> or date value into an RFC 3339 timestamp (or ""). */
export function toRFC3339(local: string): string {
  if (!local) return "";
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}
