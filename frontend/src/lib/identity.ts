// Identity checks that mirror the server's (signer/identity.go). The server
// decides; these only tell the user early. Rule names match the server's.

/** A policy problem, as the server's problem+json and preview report it. */
export interface Problem {
  rule: string;
  reason: string;
}

/** The most identities one certificate may carry (signer.maxIdentities). */
export const MAX_IDENTITIES = 20;

/** An organisation's identity namespace. */
export interface Namespace {
  uri_prefixes: string[];
  dns_suffixes: string[];
  email_domains: string[];
}

/** The SAN kind an identity string is issued as. */
export type IdentityKind = "uri" | "dns" | "email";

/** identityKind classifies like the server: "://" is a URI, "@" an email, else DNS. */
export function identityKind(name: string): IdentityKind {
  if (name.includes("://")) return "uri";
  if (name.includes("@")) return "email";
  return "dns";
}

const syntax = (reason: string): Problem => ({ rule: "identity-syntax", reason });

function checkCharacters(name: string): Problem | null {
  if (name === "") return syntax("an identity is empty");
  if (name.length > 255) return syntax(`identity "${name.slice(0, 40)}…" is longer than 255 characters`);
  for (const ch of name) {
    const c = ch.codePointAt(0) ?? 0;
    if (c < 0x21 || c === 0x7f || /\s/u.test(ch)) return syntax(`identity "${name}" contains a control or space character`);
    if (c > 0x7f) return syntax(`identity "${name}" contains non-ASCII characters; use the IDNA (xn--) form`);
  }
  if (name.includes("*")) return syntax(`identity "${name}" contains a wildcard; client identities name exactly one party`);
  return null;
}

/** checkDNSName reports why a DNS identity is malformed, or null. */
export function checkDNSName(name: string): Problem | null {
  const lower = name.toLowerCase();
  if (lower.endsWith(".")) return syntax(`DNS identity "${name}" must not end with a dot`);
  const labels = lower.split(".");
  if (labels.length < 2) return syntax(`DNS identity "${name}" is not a fully qualified name`);
  for (const l of labels) {
    if (l === "" || l.length > 63) return syntax(`DNS identity "${name}" has an empty or over-long label`);
    if (l.startsWith("-") || l.endsWith("-")) return syntax(`DNS identity "${name}" has a label that starts or ends with '-'`);
    const bad = l.match(/[^a-z0-9-]/);
    if (bad) return syntax(`DNS identity "${name}" contains "${bad[0]}"; only letters, digits, '-' and '.' are allowed`);
  }
  return null;
}

function checkURI(name: string): Problem | null {
  const m = name.match(/^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/);
  if (!m) return syntax(`identity "${name}" is not a well-formed URI`);
  const [, scheme, authority, path, query, fragment] = m;
  if (authority.includes("@") || query !== undefined || fragment !== undefined || /:\d*$/.test(authority)) {
    return syntax(`URI identity "${name}" must not carry user info, a port, a query or a fragment`);
  }
  if (authority === "") return syntax(`URI identity "${name}" has no authority (host or trust domain)`);
  if (scheme.toLowerCase() === "spiffe") {
    if (authority !== authority.toLowerCase()) return syntax(`SPIFFE ID "${name}": the trust domain must be lower case`);
    if (path === "" || path === "/" || path.endsWith("/")) return syntax(`SPIFFE ID "${name}" must have a path that does not end in /`);
    for (const seg of path.slice(1).split("/")) {
      if (seg === "" || seg === "." || seg === "..") return syntax(`SPIFFE ID "${name}" has an empty or dot path segment`);
    }
  }
  if (scheme !== scheme.toLowerCase()) return syntax(`URI identity "${name}" is not in canonical form (lower-case scheme)`);
  return null;
}

function checkEmail(name: string): Problem | null {
  const at = name.lastIndexOf("@");
  const local = name.slice(0, at);
  if (at <= 0 || !/^[A-Za-z0-9.!#$%&'+/=?^_`{|}~-]+$/.test(local) || local.startsWith(".") || local.endsWith(".") || local.includes("..")) {
    return syntax(`email identity "${name}" is not a plain address like name@example.com`);
  }
  if (checkDNSName(name.slice(at + 1))) return syntax(`email identity "${name}" has an invalid domain`);
  return null;
}

/** checkIdentity reports why one identity is malformed, or null when it is well formed. */
export function checkIdentity(name: string): Problem | null {
  const p = checkCharacters(name);
  if (p) return p;
  switch (identityKind(name)) {
    case "uri":
      return checkURI(name);
    case "email":
      return checkEmail(name);
    default:
      return checkDNSName(name);
  }
}

/** checkIdentities checks a whole list as the server does: count, duplicates, then each name. */
export function checkIdentities(names: string[]): Problem[] {
  if (names.length === 0) {
    return [{ rule: "identities", reason: "at least one identity (URI, DNS name or email address) is required" }];
  }
  const out: Problem[] = [];
  if (names.length > MAX_IDENTITIES) {
    out.push({ rule: "identities", reason: `at most ${MAX_IDENTITIES} identities per certificate, got ${names.length}` });
  }
  const seen = new Set<string>();
  for (const n of names) {
    const key = n.toLowerCase();
    if (seen.has(key)) {
      out.push(syntax(`identity "${n}" is listed twice`));
      continue;
    }
    seen.add(key);
    const p = checkIdentity(n);
    if (p) out.push(p);
  }
  return out;
}

/** splitIdentities turns the text of an identities field (one per line, or comma separated) into a list. */
export function splitIdentities(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** inNamespace tells whether a well-formed identity lies inside ns (same matching as the server). */
export function inNamespace(name: string, ns: Namespace): boolean {
  switch (identityKind(name)) {
    case "uri":
      return (ns.uri_prefixes ?? []).some((p) => {
        if (p === "") return false;
        if (p.endsWith("/")) return name.startsWith(p) && name.length > p.length;
        return name === p || name.startsWith(p + "/");
      });
    case "email": {
      const domain = name.slice(name.lastIndexOf("@") + 1).toLowerCase();
      return (ns.email_domains ?? []).some((d) => d.replace(/^@/, "").toLowerCase() === domain);
    }
    default: {
      const d = name.toLowerCase();
      return (ns.dns_suffixes ?? []).some((s) => {
        const suf = s.replace(/^\./, "").toLowerCase();
        return suf !== "" && (d === suf || d.endsWith("." + suf));
      });
    }
  }
}

/** checkNamespace names each identity outside the organisation's namespace. */
export function checkNamespace(names: string[], ns: Namespace): Problem[] {
  const list = (l: string[] | undefined) => (l && l.length ? l.join(", ") : "none");
  return names
    .filter((n) => checkIdentity(n) === null && !inNamespace(n, ns))
    .map((n) => {
      const kind = identityKind(n);
      const what = kind === "uri" ? `URI "${n}"` : kind === "email" ? `email "${n}"` : `DNS name "${n.toLowerCase()}"`;
      const allowed =
        kind === "uri"
          ? `allowed prefixes: ${list(ns.uri_prefixes)}`
          : kind === "email"
            ? `allowed domains: ${list(ns.email_domains)}`
            : `allowed suffixes: ${list(ns.dns_suffixes)}`;
      return { rule: "namespace", reason: `${what} is outside the organisation's namespace (${allowed})` };
    });
}
