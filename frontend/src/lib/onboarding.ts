// Onboarding logic of the admin's users page and the new-request form:
// which organisation a request is for, how a user is described, and the API
// paths, whose path parameters are always percent-encoded (OIDC subjects
// may hold "/", "#" or "%").

/** SeenUser is a user who signed in (GET /api/v1/users). */
export interface SeenUser {
  subject: string;
  name: string;
  email: string;
  email_verified: boolean;
  role: "" | "partner" | "admin" | "auditor";
  claimed_org: string;
  org: string;
  first_seen_at: string;
  last_seen_at: string;
}

/** Invitation is an invitation of an e-mail address to an organisation. */
export interface Invitation {
  id: string;
  org: string;
  email: string;
  created_by: string;
  created_at: string;
  expires_at: string;
  accepted_by?: string;
  accepted_at?: string;
  state: "pending" | "accepted" | "expired";
}

/** memberPath is the API path of one member of an organisation. */
export function memberPath(slug: string, subject: string): string {
  return `/api/v1/orgs/${encodeURIComponent(slug)}/members/${encodeURIComponent(subject)}`;
}

/** invitationsPath is the API path of an organisation's invitations (or one of them). */
export function invitationsPath(slug: string, id?: string): string {
  const base = `/api/v1/orgs/${encodeURIComponent(slug)}/invitations`;
  return id ? `${base}/${encodeURIComponent(id)}` : base;
}

/** userNote says what an unassigned user still needs besides an organisation. */
export function userNote(u: Pick<SeenUser, "role" | "email" | "email_verified">): string {
  const notes: string[] = [];
  if (u.role === "") notes.push("has no certdesk role at the identity provider: an organisation alone does not let them in");
  if (u.email && !u.email_verified) notes.push("e-mail not verified by the identity provider: an invitation will not match it");
  return notes.join("; ");
}

/** invitationStateText describes an invitation for the table. */
export function invitationStateText(inv: Pick<Invitation, "state" | "accepted_by">): string {
  switch (inv.state) {
    case "accepted":
      return inv.accepted_by ? `accepted by ${inv.accepted_by}` : "accepted";
    case "expired":
      return "expired";
    default:
      return "pending";
  }
}

/** inviteEmailProblem returns why an address cannot be invited, or "" (the server checks it too). */
export function inviteEmailProblem(email: string): string {
  const e = email.trim();
  if (e === "") return "enter the e-mail address to invite";
  if (e !== email || /\s/.test(e)) return "the address must not contain spaces";
  if (!/^[^@<>()\s]+@[^@<>()\s]+\.[^@<>()\s]+$/.test(e)) return "write the address as name@example.org";
  return "";
}

/**
 * requestOrg is the organisation a new request is for: a partner's own; an
 * admin, who belongs to none, must choose one (problem says so until then).
 */
export function requestOrg(me: { role: string; org: string }, chosen: string): { org: string; problem: string } {
  if (me.role !== "admin") return { org: me.org, problem: me.org ? "" : "you belong to no organisation yet; ask a certdesk administrator" };
  if (!chosen) return { org: "", problem: "choose the organisation the certificate is for" };
  return { org: chosen, problem: "" };
}
