// The portal's JSON API (/api/v1). Every error becomes an ApiError carrying
// the RFC 9457 problem details, which the pages show as they are.
import type { Namespace, Problem } from "./lib/identity";
import type { RevocationReason, RevocationReasonInfo, Role } from "./lib/forms";

/** Me is the signed-in user (GET /api/v1/me). */
export interface Me {
  subject: string;
  name: string;
  email: string;
  role: Role;
  org: string;
  csrf_token: string;
  demo: boolean;
  demo_key: boolean;
}

/** RequestState is a request's place in the workflow. */
export type RequestState = "submitted" | "approved" | "issued" | "rejected" | "cancelled";

/** CertRequest is a certificate request. */
export interface CertRequest {
  id: string;
  state: RequestState;
  org: string;
  identities: string[];
  requested_by: string;
  certificate_id?: string;
  csr: string;
  key_type: string;
  validity_days: number;
  note: string;
  decided_by?: string;
  decision_reason?: string;
  created_at: string;
  updated_at: string;
  renewal_of?: string;
  /** policy is the server's current verdict, sent only while the request is submitted. */
  policy?: { ok: boolean; problems: Problem[] };
  /** Why an approved request's certificate could not be issued; an admin may retry. */
  failure_reason?: string;
  /** Where an approved request's issuance stands: its certificate waits for the HSM, or it failed. */
  issuance?: "pending" | "failed";
  /** via is the channel a request came through besides the portal: "acme", "est", "renew". */
  via?: string;
  /** via_ref says which binding, account, order or certificate it came from ("binding/<id> account/<id> order/<id>"). */
  via_ref?: string;
}

/** Certificate is an issued certificate. */
export interface Certificate {
  id: string;
  serial: string;
  org: string;
  identities: string[];
  key_type: string;
  not_before: string;
  not_after: string;
  state: "valid" | "revoked" | "expired";
  request_id: string;
  revoked_at?: string;
  revocation_reason?: RevocationReason;
}

/** Preview is the server's verdict on a CSR without submitting it. */
export interface Preview {
  key_type: string;
  subject: string;
  sans: string[];
  signature_algorithm: string;
  problems: Problem[];
}

/** Org is an organisation and its identity namespace. */
export interface Org extends Namespace {
  slug: string;
  name: string;
  max_validity_days: number;
  auto_approve_renewals: boolean;
}

/** Token is an API token (the secret only in the create answer). */
export interface Token {
  id: string;
  name: string;
  expires_at: string;
  created_at?: string;
  last_used_at?: string;
  token?: string;
}

/** AuditEvent is one link of the audit hash chain. */
export interface AuditEvent {
  seq: number;
  time: string;
  actor: string;
  role: string;
  org: string;
  action: string;
  object_type: string;
  object_id: string;
  source: string;
  detail: unknown;
  prev_hash: string;
  hash: string;
}

/**
 * eventDetail returns an audit event's detail as an object. The API sends it
 * as the canonical JSON text that the hash chain covers; older answers or
 * tests may send the object itself.
 */
export function eventDetail(e: Pick<AuditEvent, "detail">): Record<string, unknown> {
  let d = e.detail;
  if (typeof d === "string") {
    try {
      d = JSON.parse(d);
    } catch {
      return { text: d };
    }
  }
  return d && typeof d === "object" && !Array.isArray(d) ? (d as Record<string, unknown>) : {};
}

/** chronological sorts audit events oldest first, by their chain position. */
export function chronological(events: AuditEvent[]): AuditEvent[] {
  return [...events].sort((a, b) => a.seq - b.seq);
}

/** Verify is the audit chain verification result. */
export interface Verify {
  ok: boolean;
  events: number;
  first_bad_seq?: number;
  problem?: string;
  head_hash: string;
  /** Signed checkpoints checked (the issuing CA key signs the chain head every 10 minutes). */
  checkpoints?: number;
  last_checkpoint_seq?: number;
}

/** WeekCount is one bar of a chart. */
export interface WeekCount {
  week: string;
  count: number;
}

/** Stats feed the auditor's charts. */
export interface Stats {
  issued_per_week: WeekCount[];
  revoked_per_week: WeekCount[];
  expiring_per_week: WeekCount[];
}

/** Revocation is the CRL and OCSP status. */
export interface Revocation {
  crls: { issuer: string; number: string | number; this_update: string; next_update: string; entries: number; url: string }[] | null;
  /** null until the delegated OCSP responder exists (moments after the first start). */
  ocsp: { responder_subject: string; serial: string; not_after: string; url: string; delegated?: boolean } | null;
  last_revoke_to_publish_ms?: number | null;
}

/** Page is a list answer. */
export interface Page<T> {
  items: T[];
  next: string;
}

/** revocationReasons fetches the reasons the server accepts and who may give each. */
export async function revocationReasons(): Promise<RevocationReasonInfo[]> {
  return (await api<Page<RevocationReasonInfo>>("/api/v1/revocation/reasons")).items;
}

/** ProblemDetails is an RFC 9457 problem. */
export interface ProblemDetails {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  rule?: string;
}

/** ApiError is a failed API call, with the problem the server sent. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public problem: ProblemDetails,
  ) {
    super(problem.detail || problem.title || `HTTP ${status}`);
  }
}

let csrfToken = "";

/** setCSRFToken remembers the session's CSRF token for state-changing calls. */
export function setCSRFToken(t: string): void {
  csrfToken = t;
}

/** api calls the JSON API; a body makes it a state-changing call with the CSRF header. */
export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const method = init.method ?? (init.body !== undefined ? "POST" : "GET");
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    headers["X-CSRF-Token"] = csrfToken;
    headers["Content-Type"] = "application/json";
  }
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: method !== "GET" && method !== "HEAD" ? JSON.stringify(init.body ?? {}) : undefined,
    });
  } catch {
    throw new ApiError(0, { title: "network error", detail: "the server could not be reached; check your connection and try again" });
  }
  const text = await res.text();
  if (!res.ok) {
    let problem: ProblemDetails = { status: res.status, title: res.statusText };
    try {
      problem = { ...problem, ...JSON.parse(text) };
    } catch {
      problem.detail = `the server answered ${res.status} ${res.statusText}`;
    }
    throw new ApiError(res.status, problem);
  }
  if (text === "") return undefined as T;
  return JSON.parse(text) as T;
}

/** fetchText downloads a text resource (a PEM) and fails with the server's problem. */
export async function fetchText(path: string): Promise<string> {
  const res = await fetch(path, { credentials: "same-origin" });
  const text = await res.text();
  if (!res.ok) {
    let problem: ProblemDetails = { status: res.status, detail: `the server answered ${res.status}` };
    try {
      problem = { ...problem, ...JSON.parse(text) };
    } catch {
      /* keep the plain message */
    }
    throw new ApiError(res.status, problem);
  }
  return text;
}

/** saveFile offers bytes or text to the user as a download. */
export function saveFile(name: string, data: BlobPart, type: string): void {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** signOut ends the session and follows the server's redirect. */
export async function signOut(): Promise<void> {
  const r = await api<{ redirect?: string }>("/auth/logout", { method: "POST", body: {} });
  location.assign(r?.redirect || "/");
}
