// The decisions of the ACME bindings page and of the request channel
// label, kept apart from React so vitest checks them: a binding's status
// as a person sees it, who may approve or revoke it, the client command
// lines shown with its credentials, and through which channel a request
// came.
import type { Role } from "./forms";

/** ACMEBinding is an external account binding (GET /api/v1/acme/bindings). */
export interface ACMEBinding {
  id: string;
  org: string;
  name: string;
  dns_names: string[];
  validity_days: number;
  state: "requested" | "approved" | "revoked";
  requested_by: string;
  approved_by?: string;
  approved_at?: string;
  revoked_by?: string;
  revoked_at?: string;
  key_shown_at?: string;
  expires_at: string;
  created_at: string;
}

/** BindingCredentials are what POST …/credentials answers, once. */
export interface BindingCredentials extends ACMEBinding {
  eab_kid: string;
  eab_hmac_key: string;
  directory: string;
}

/** ESTCode is what POST …/est-codes answers, once. */
export interface ESTCode {
  id: string;
  binding_id: string;
  expires_at: string;
  code: string;
  username: string;
  simpleenroll: string;
}

/** bindingStatus is the state a person sees: an approved or asked-for binding past its expiry is "expired". */
export function bindingStatus(b: Pick<ACMEBinding, "state" | "expires_at">, now: Date): ACMEBinding["state"] | "expired" {
  if (b.state !== "revoked" && new Date(b.expires_at).getTime() <= now.getTime()) return "expired";
  return b.state;
}

/** Who is looking at the page. */
export interface Viewer {
  subject: string;
  role: Role;
  org: string;
}

/** approveBlock says why the viewer may not approve the binding, or null when they may. */
export function approveBlock(b: ACMEBinding, me: Viewer, now: Date): string | null {
  if (me.role !== "admin") return "Only an admin approves a binding.";
  const st = bindingStatus(b, now);
  if (st !== "requested") return `The binding is ${st}.`;
  if (b.requested_by === me.subject) return "You asked for this binding: another admin must approve it (four eyes).";
  return null;
}

/** mayTakeKey says whether the viewer can take the binding's credentials now: its requester, once, after approval. */
export function mayTakeKey(b: ACMEBinding, me: Viewer, now: Date): boolean {
  return bindingStatus(b, now) === "approved" && b.requested_by === me.subject && !b.key_shown_at && me.role !== "auditor";
}

/** mayRevoke says whether the viewer may revoke the binding: an admin any, a partner their organisation's, never an auditor. */
export function mayRevoke(b: ACMEBinding, me: Viewer): boolean {
  if (b.state === "revoked") return false;
  return me.role === "admin" || (me.role === "partner" && b.org === me.org);
}

/** mayMakeCode says whether the viewer may make a one-time EST code: for a usable binding, an admin or a partner of its organisation. */
export function mayMakeCode(b: ACMEBinding, me: Viewer, now: Date): boolean {
  return bindingStatus(b, now) === "approved" && (me.role === "admin" || (me.role === "partner" && b.org === me.org));
}

/** exampleName is a DNS name inside the binding's scope, for the command lines. */
export function exampleName(dnsNames: string[]): string {
  const first = dnsNames[0] ?? "host.example";
  return first.startsWith("*.") ? `host.${first.slice(2)}` : first;
}

/**
 * clientCommands are ready command lines for certbot (docs/partner.md §6.2) and the lego CLI with the credentials.
 * The HMAC key is joined to its option with "=": a base64url key may begin with "-", which certbot's parser would take for an option.
 */
export function clientCommands(c: Pick<BindingCredentials, "eab_kid" | "eab_hmac_key" | "directory" | "dns_names">): { certbot: string; lego: string } {
  const name = exampleName(c.dns_names);
  const certbot = [
    `certbot certonly --server ${c.directory} \\`,
    `  --eab-kid ${c.eab_kid} --eab-hmac-key=${c.eab_hmac_key} \\`,
    `  --manual --manual-auth-hook /bin/true --preferred-challenges http \\`,
    `  --key-type ecdsa --elliptic-curve secp256r1 \\`,
    `  --agree-tos -m you@example.com --no-eff-email --non-interactive \\`,
    `  -d ${name}`,
  ].join("\n");
  const lego = [
    `lego --server ${c.directory} \\`,
    `  --eab --kid ${c.eab_kid} --hmac=${c.eab_hmac_key} \\`,
    `  --email you@example.com --accept-tos --key-type ec256 --http \\`,
    `  --domains ${name} run`,
  ].join("\n");
  return { certbot, lego };
}

/** estCodeCommand is the curl line a device enrols with, using a one-time code (docs/partner.md §6.5). */
export function estCodeCommand(c: Pick<ESTCode, "code" | "username" | "simpleenroll">): string {
  return [
    `curl -fsS --user '${c.username}:${c.code}' -H 'Content-Type: application/pkcs10' \\`,
    `  --data-binary @host.csr.b64 ${c.simpleenroll} | base64 -d |`,
    `  openssl pkcs7 -inform DER -print_certs | openssl x509 -out host.pem`,
  ].join("\n");
}

/** Channel is how a request reached certdesk. */
export type Channel = "portal" | "acme" | "est" | "renew";

/** channelLabels name the channels for display. */
export const channelLabels: Record<Channel, string> = { portal: "Portal", acme: "ACME", est: "EST", renew: "mTLS renewal" };

/** RequestChannel is a request's channel, its label, and the references that say from where. */
export interface RequestChannel {
  channel: Channel;
  label: string;
  refs: { kind: string; id: string }[];
}

/**
 * requestChannel says through which channel a request came: via (acme,
 * est, renew) when the server set it, else a renewal submitted by the
 * current certificate over mTLS (requested_by "certificate:<serial>"),
 * else the portal or the API. refs are the parts of via_ref
 * ("binding/<id> account/<id> order/<id>").
 */
export function requestChannel(r: { via?: string; via_ref?: string; requested_by?: string }): RequestChannel {
  let channel: Channel = "portal";
  const refs = (r.via_ref ?? "")
    .split(/\s+/)
    .filter((p) => p.includes("/"))
    .map((p) => ({ kind: p.slice(0, p.indexOf("/")), id: p.slice(p.indexOf("/") + 1) }));
  if (r.via === "acme" || r.via === "est" || r.via === "renew") channel = r.via;
  else if (r.requested_by?.startsWith("certificate:")) {
    channel = "renew";
    refs.push({ kind: "certificate", id: r.requested_by.slice("certificate:".length) });
  }
  return { channel, label: channelLabels[channel], refs };
}
