// Small decisions the pages make, kept apart from React so vitest checks
// them: who may open which page, example identities from a namespace, the
// CSR names the CA ignores, and the download URLs and snippets.
import type { Role } from "./forms";
import type { Namespace } from "./identity";

/** pageRoles lists, for each page that not every role may open, the roles that may; the server enforces the same. */
const pageRoles: [RegExp, Role[]][] = [
  [/^\/queue$/, ["admin"]],
  [/^\/orgs$/, ["admin"]],
  [/^\/users$/, ["admin"]],
  [/^\/revocation$/, ["admin", "auditor"]],
  [/^\/audit$/, ["admin", "auditor"]],
  [/^\/requests\/new$/, ["admin", "partner"]],
];

/** mayOpen says whether role may open the page at path (pages not listed are open to every role). */
export function mayOpen(role: Role, path: string): boolean {
  const rule = pageRoles.find(([re]) => re.test(path));
  return !rule || rule[1].includes(role);
}

/**
 * exampleIdentity is an identity of the namespace for a placeholder: a URI
 * under the first prefix, else a name under the first DNS suffix, else an
 * address at the first e-mail domain ("" for an empty namespace).
 */
export function exampleIdentity(ns: Namespace | null | undefined, name = "billing"): string {
  const uri = ns?.uri_prefixes?.[0];
  if (uri) return uri.endsWith("/") ? uri + name : `${uri}/${name}`;
  const dns = ns?.dns_suffixes?.[0];
  if (dns) return `${name}.${dns.replace(/^\*?\./, "")}`;
  const mail = ns?.email_domains?.[0];
  if (mail) return `${name}@${mail.replace(/^@/, "")}`;
  return "";
}

/** namespaceParts names the three kinds of a namespace for display, skipping empty ones. */
export function namespaceParts(ns: Namespace): { label: string; entries: string[] }[] {
  return [
    { label: "URI prefixes", entries: ns.uri_prefixes ?? [] },
    { label: "DNS suffixes", entries: (ns.dns_suffixes ?? []).map((s) => `*.${s.replace(/^\*?\./, "")}`) },
    { label: "E-mail domains", entries: (ns.email_domains ?? []).map((d) => `*@${d.replace(/^@/, "")}`) },
  ].filter((p) => p.entries.length > 0);
}

/**
 * ignoredSANs returns the CSR's SANs that are not among the requested
 * identities: the CA sets the certificate's SANs from the approved
 * identities only, so these will not be in it.
 */
export function ignoredSANs(csrSANs: string[], identities: string[]): string[] {
  const want = new Set(identities.map((i) => i.toLowerCase()));
  return csrSANs.filter((s) => !want.has(s.toLowerCase()));
}

/** DownloadLinks are the stable URLs of a certificate's files. */
export interface DownloadLinks {
  pem: string;
  chain: string;
  bundle: string;
}

/** downloadLinks gives the stable URLs of certificate id's PEM, chain and the CA bundle on origin. */
export function downloadLinks(id: string, origin: string): DownloadLinks {
  const base = `${origin}/api/v1/certificates/${encodeURIComponent(id)}`;
  return { pem: `${base}/pem`, chain: `${base}/chain`, bundle: `${origin}/ca/bundle.pem` };
}

/** Snippets are the copy-paste examples shown with a certificate. */
export interface Snippets {
  fetch: string;
  curl: string;
  openssl: string;
  nginx: string;
}

/**
 * snippets shows how to fetch and use certificate id. browserKey says the
 * key was made in this browser and is downloaded encrypted (certdesk-ID.key);
 * otherwise the key is the partner's own (client.key, as in docs/partner.md).
 * The nginx file names are those of docs/gateway.md.
 */
export function snippets(id: string, origin: string, browserKey: boolean): Snippets {
  const links = downloadLinks(id, origin);
  const chain = `certdesk-${id}-chain.pem`;
  const key = browserKey ? `certdesk-${id}.key` : "client.key";
  const host = "api.partner-gateway.example";
  const decrypt = browserKey ? `# decrypt the downloaded key once (it asks for the passphrase):\nopenssl pkey -in ${key} -out ${key}.plain && chmod 600 ${key}.plain\n` : "";
  const plain = browserKey ? `${key}.plain` : key;
  return {
    fetch: `# with an API token (API tokens page), e.g. from a server:\ncurl --fail-with-body -sS -H "Authorization: Bearer $CERTDESK_TOKEN" \\\n  -o ${chain} \\\n  ${links.chain}`,
    curl: `${decrypt}curl --fail-with-body --cert ${chain} --key ${plain} \\\n  https://${host}/`,
    openssl: `openssl s_client -connect ${host}:443 \\\n  -cert ${chain} -key ${plain} \\\n  -CAfile server-ca.pem -brief </dev/null`,
    nginx: `# on the gateway that checks partners' certificates (docs/gateway.md);\n# refresh both files from ${origin}/ca/bundle.pem and ${origin}/crl/bundle.pem\nssl_client_certificate /etc/nginx/certdesk/ca-bundle.pem;\nssl_crl                /etc/nginx/certdesk/crl-bundle.pem;\nssl_verify_client      on;\nssl_verify_depth       2;`,
  };
}

/** pendingCount says how many requests wait, from a list answer capped at limit ("100+" when more follow). */
export function pendingCount(items: unknown[] | undefined, next: string | undefined): string {
  const n = items?.length ?? 0;
  return next ? `${n}+` : String(n);
}

/** requestsChanged is the window event a page sends after it changed a request, so that the menu's pending count is read again. */
export const requestsChanged = "certdesk:requests-changed";

/** crlBundleURL is /crl/bundle.pem where the CRLs are published (next to crlURL, a CRL's URL), else on origin. */
export function crlBundleURL(crlURL: string | undefined, origin: string): string {
  const m = crlURL?.match(/^(.*)\/crl\/[^/]+$/);
  return `${m ? m[1] : origin}/crl/bundle.pem`;
}
