import { describe, expect, it } from "vitest";
import { checkIdentities, checkIdentity, checkNamespace, identityKind, inNamespace, splitIdentities, type Namespace } from "./identity";

describe("checkIdentity", () => {
  const good: Array<[string, string]> = [
    ["spiffe://example.org/partners/acme/billing", "uri"],
    ["https://api.acme.example/client", "uri"],
    ["billing.acme.example", "dns"],
    ["ops@acme.example", "email"],
  ];
  it.each(good)("accepts the well-formed %s as a %s identity", (name, kind) => {
    expect(checkIdentity(name)).toBeNull();
    expect(identityKind(name)).toBe(kind);
  });

  const bad: Array<[string, RegExp]> = [
    ["", /empty/],
    ["*.acme.example", /wildcard/],
    ["bill ing.acme.example", /control or space/],
    ["bücher.example", /non-ASCII/],
    ["localhost", /not a fully qualified name/],
    ["acme.example.", /must not end with a dot/],
    ["-a.acme.example", /starts or ends with '-'/],
    ["a_b.acme.example", /only letters, digits/],
    ["spiffe://Example.org/x", /trust domain must be lower case/],
    ["spiffe://example.org/", /must have a path/],
    ["spiffe://example.org/a//b", /empty or dot path segment/],
    ["spiffe://example.org/a/../b", /empty or dot path segment/],
    ["https://acme.example:8443/x", /port/],
    ["https://user@acme.example/x", /user info/],
    ["https://acme.example/x?y=1", /query/],
    ["https:///x", /no authority/],
    ["Ops Team <ops@acme.example>", /control or space/],
    ["ops@acme", /invalid domain/],
    ["@acme.example", /plain address/],
  ];
  it.each(bad)("refuses the malformed %j: %s", (name, reason) => {
    const p = checkIdentity(name);
    expect(p?.rule).toBe("identity-syntax");
    expect(p?.reason).toMatch(reason);
  });
});

describe("checkIdentities", () => {
  it("requires at least one identity", () => {
    expect(checkIdentities([])).toEqual([{ rule: "identities", reason: expect.stringMatching(/at least one/) }]);
  });
  it("refuses duplicates regardless of case", () => {
    expect(checkIdentities(["a.acme.example", "A.acme.example"])[0].reason).toMatch(/listed twice/);
  });
  it("refuses more than 20 identities", () => {
    const many = Array.from({ length: 21 }, (_, i) => `s${i}.acme.example`);
    expect(checkIdentities(many)[0].reason).toMatch(/at most 20/);
  });
});

describe("namespace", () => {
  const ns: Namespace = {
    uri_prefixes: ["spiffe://example.org/partners/acme/", "https://acme.example/svc"],
    dns_suffixes: ["acme.example"],
    email_domains: ["@acme.example"],
  };
  const cases: Array<[string, boolean]> = [
    ["spiffe://example.org/partners/acme/billing", true],
    ["spiffe://example.org/partners/acme/", false],
    ["spiffe://example.org/partners/acme-evil/billing", false],
    ["https://acme.example/svc", true],
    ["https://acme.example/svc/a", true],
    ["https://acme.example/svc-evil", false],
    ["acme.example", true],
    ["billing.ACME.example", true],
    ["evilacme.example", false],
    ["ops@acme.example", true],
    ["ops@sub.acme.example", false],
  ];
  it.each(cases)("inNamespace(%s) is %s", (name, want) => {
    expect(inNamespace(name, ns)).toBe(want);
  });
  it("names each identity outside the namespace with the allowed values", () => {
    const p = checkNamespace(["billing.acme.example", "x.other.example"], ns);
    expect(p).toEqual([{ rule: "namespace", reason: 'DNS name "x.other.example" is outside the organisation\'s namespace (allowed suffixes: acme.example)' }]);
  });
});

describe("splitIdentities", () => {
  it("splits on newlines and commas and drops blanks", () => {
    expect(splitIdentities(" a.acme.example\n\nb.acme.example, c.acme.example ,")).toEqual(["a.acme.example", "b.acme.example", "c.acme.example"]);
  });
});
