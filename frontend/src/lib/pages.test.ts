import { describe, expect, it } from "vitest";
import { crlBundleURL, downloadLinks, exampleIdentity, ignoredSANs, mayOpen, namespaceParts, pendingCount, snippets } from "./pages";

describe("mayOpen", () => {
  it.each([
    ["partner", "/audit", false],
    ["partner", "/revocation", false],
    ["partner", "/queue", false],
    ["partner", "/orgs", false],
    ["partner", "/requests/new", true],
    ["partner", "/certificates/abc", true],
    ["auditor", "/audit", true],
    ["auditor", "/requests/new", false],
    ["auditor", "/queue", false],
    ["admin", "/queue", true],
    ["admin", "/orgs", true],
    ["admin", "/audit", true],
  ] as const)("%s opening %s: %s", (role, path, want) => {
    expect(mayOpen(role, path)).toBe(want);
  });
});

describe("exampleIdentity", () => {
  it("takes the first URI prefix, with or without its slash", () => {
    expect(exampleIdentity({ uri_prefixes: ["spiffe://demo.certdesk.test/partners/acme/"], dns_suffixes: ["acme.example"], email_domains: [] })).toBe(
      "spiffe://demo.certdesk.test/partners/acme/billing",
    );
    expect(exampleIdentity({ uri_prefixes: ["spiffe://t/acme"], dns_suffixes: [], email_domains: [] })).toBe("spiffe://t/acme/billing");
  });
  it("falls back to a DNS name, then an e-mail address", () => {
    expect(exampleIdentity({ uri_prefixes: [], dns_suffixes: [".acme.example"], email_domains: ["x"] })).toBe("billing.acme.example");
    expect(exampleIdentity({ uri_prefixes: [], dns_suffixes: [], email_domains: ["@acme.example"] })).toBe("billing@acme.example");
  });
  it("is empty without a namespace", () => {
    expect(exampleIdentity(null)).toBe("");
    expect(exampleIdentity({ uri_prefixes: [], dns_suffixes: [], email_domains: [] })).toBe("");
  });
});

describe("namespaceParts", () => {
  it("labels each kind and leaves out empty ones", () => {
    expect(namespaceParts({ uri_prefixes: ["spiffe://t/acme/"], dns_suffixes: ["acme.example"], email_domains: [] })).toEqual([
      { label: "URI prefixes", entries: ["spiffe://t/acme/"] },
      { label: "DNS suffixes", entries: ["*.acme.example"] },
    ]);
  });
});

describe("ignoredSANs", () => {
  it("lists the CSR's names that are not requested identities", () => {
    expect(ignoredSANs(["spiffe://t/acme/billing", "DNS.example", "other@x"], ["spiffe://t/acme/billing", "dns.example"])).toEqual(["other@x"]);
    expect(ignoredSANs([], ["a"])).toEqual([]);
  });
});

describe("snippets and links", () => {
  const o = "https://certs.example.com";
  it("gives stable URLs of the API", () => {
    expect(downloadLinks("c1", o)).toEqual({
      pem: "https://certs.example.com/api/v1/certificates/c1/pem",
      chain: "https://certs.example.com/api/v1/certificates/c1/chain",
      bundle: "https://certs.example.com/ca/bundle.pem",
    });
  });
  it("fetches with a bearer token and --fail-with-body", () => {
    const s = snippets("c1", o, false);
    expect(s.fetch).toContain('-H "Authorization: Bearer $CERTDESK_TOKEN"');
    expect(s.fetch).toContain("https://certs.example.com/api/v1/certificates/c1/chain");
    expect(`${s.fetch}\n${s.curl}`).not.toMatch(/-fsS|curl -f /);
    expect(s.curl).toContain("--fail-with-body");
  });
  it("decrypts only a key downloaded from the browser", () => {
    expect(snippets("c1", o, false).curl).not.toContain("openssl pkey");
    expect(snippets("c1", o, false).curl).toContain("--key client.key");
    expect(snippets("c1", o, true).curl).toContain("openssl pkey -in certdesk-c1.key");
    expect(snippets("c1", o, true).curl).toContain("--key certdesk-c1.key.plain");
  });
  it("names the files docs/gateway.md names", () => {
    const n = snippets("c1", o, false).nginx;
    expect(n).toContain("/etc/nginx/certdesk/ca-bundle.pem");
    expect(n).toContain("/etc/nginx/certdesk/crl-bundle.pem");
    expect(n).toContain("https://certs.example.com/crl/bundle.pem");
  });
});

describe("the nginx snippet and docs/gateway.md", () => {
  it("name the same files", async () => {
    const { readFileSync } = await import("node:fs");
    const doc = readFileSync(new URL("../../../docs/gateway.md", import.meta.url), "utf8");
    for (const line of snippets("c1", "https://p", false).nginx.split("\n").filter((l) => l.startsWith("ssl_client_certificate") || l.startsWith("ssl_crl"))) {
      const [directive, file] = line.replace(/;$/, "").split(/\s+/);
      expect(doc).toMatch(new RegExp(`${directive}\\s+${file.replace(/[./]/g, "\\$&")};`));
    }
  });
});

describe("pendingCount", () => {
  it("counts the page and says when more follow", () => {
    expect(pendingCount([], "")).toBe("0");
    expect(pendingCount([1, 2], undefined)).toBe("2");
    expect(pendingCount([1, 2], "cursor")).toBe("2+");
  });
});

describe("crlBundleURL", () => {
  it("sits next to the published CRLs, else on the portal", () => {
    expect(crlBundleURL("http://pki.example.com/crl/issuing.crl", "https://p")).toBe("http://pki.example.com/crl/bundle.pem");
    expect(crlBundleURL(undefined, "https://p")).toBe("https://p/crl/bundle.pem");
  });
});
