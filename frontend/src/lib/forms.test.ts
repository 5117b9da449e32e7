import { describe, expect, it } from "vitest";
import type { CSRInfo, ParseResult } from "./csr";
import {
  bySoonestExpiry,
  canConfirmRevoke,
  daysUntil,
  evaluateNewRequest,
  expiryLevel,
  passphraseProblem,
  queryString,
  reasonLabel,
  reasonsFor,
  type RevocationReasonInfo,
  type NewRequestInput,
} from "./forms";

const goodInfo: CSRInfo = {
    pem: "-----BEGIN CERTIFICATE REQUEST-----\n...",
  subject: "CN=billing",
  sans: ["spiffe://example.org/partners/acme/billing"],
    keyType: "ECDSA P-256",
    signatureAlgorithm: "ECDSA-SHA256",
    signatureValid: true,
    problems: [],
};
const goodCSR: ParseResult = { ok: true, info: goodInfo };
const ns = { uri_prefixes: ["spiffe://example.org/partners/acme/"], dns_suffixes: ["acme.example"], email_domains: [] };
const base: NewRequestInput = { parsed: goodCSR, identitiesText: "", validityDays: "90", maxValidityDays: 90, namespace: ns };

describe("evaluateNewRequest", () => {
  const cases: Array<[string, Partial<NewRequestInput>, boolean, string | null]> = [
    ["a good CSR whose SANs become the identities", {}, true, null],
    ["no CSR yet", { parsed: null }, false, "csr"],
    ["a CSR the browser refused", { parsed: { ok: false, problem: { rule: "encoding", reason: "neither PEM nor DER" } } }, false, "encoding"],
    ["a CSR with a weak key", { parsed: { ok: true, info: { ...goodInfo, problems: [{ rule: "key-type", reason: "RSA 2048" }] } } }, false, "key-type"],
    ["an identity outside the namespace", { identitiesText: "billing.other.example" }, false, "namespace"],
    ["a malformed identity", { identitiesText: "*.acme.example" }, false, "identity-syntax"],
    ["validity above the organisation's maximum", { validityDays: "365" }, false, "validity"],
    ["validity that is not a number", { validityDays: "ninety" }, false, "validity"],
    ["a problem the server preview raised", { serverProblems: [{ rule: "requested-names", reason: "x" }] }, false, "requested-names"],
  ];
  it.each(cases)("with %s, Submit is enabled=%s", (_n, patch, can, rule) => {
    const v = evaluateNewRequest({ ...base, ...patch });
    expect(v.canSubmit).toBe(can);
    if (rule) expect(v.problems.map((p) => p.rule)).toContain(rule);
    else expect(v.problems).toEqual([]);
  });
  it("takes identities from the text field over the CSR's SANs", () => {
    expect(evaluateNewRequest({ ...base, identitiesText: "a.acme.example\nb.acme.example" }).identities).toEqual(["a.acme.example", "b.acme.example"]);
  });
});

describe("revocation form", () => {
  // As GET /api/v1/revocation/reasons answers (a part of it).
  const served: RevocationReasonInfo[] = [
    { name: "superseded", code: 4, label: "Superseded", roles: ["admin", "partner"] },
    { name: "keyCompromise", code: 1, label: "Key compromise", roles: ["admin", "partner"] },
    { name: "unspecified", code: 0, label: "Unspecified", roles: ["admin"] },
    { name: "cACompromise", code: 2, label: "CA compromise", roles: ["admin"] },
  ];
  const offered: Array<[string, string[]]> = [
    ["partner", ["superseded", "keyCompromise"]],
    ["admin", ["superseded", "keyCompromise", "unspecified", "cACompromise"]],
    ["auditor", []],
  ];
  it.each(offered)("offers a %s the reasons the server allows that role, in its order", (role, want) => {
    expect(reasonsFor(served, role as never).map((r) => r.name)).toEqual(want);
  });
  it("labels a reason from the server's list, and shows an unknown one by name", () => {
    expect(reasonLabel(served, "keyCompromise")).toBe("Key compromise");
    expect(reasonLabel(served, "reason(7)")).toBe("reason(7)");
    expect(reasonLabel(undefined, "superseded")).toBe("superseded");
  });
  const confirm: Array<[string, string, boolean]> = [
    ["", "", false],
    ["superseded", "", true],
    ["keyCompromise", "", false],
    ["keyCompromise", "revoke", false],
    ["keyCompromise", "REVOKE", true],
  ];
  it.each(confirm)("reason %j with typed %j can be confirmed: %s", (reason, typed, want) => {
    expect(canConfirmRevoke(reason as never, typed)).toBe(want);
  });
});

describe("expiry", () => {
  const now = new Date("2026-03-01T00:00:00Z");
  it("counts days to expiry and warns within 30 days", () => {
    expect(daysUntil("2026-03-11T00:00:00Z", now)).toBe(10);
    expect(expiryLevel("2026-03-11T00:00:00Z", now)).toBe("soon");
    expect(expiryLevel("2026-05-01T00:00:00Z", now)).toBe("ok");
    expect(expiryLevel("2026-02-01T00:00:00Z", now)).toBe("expired");
  });
  it("sorts valid certificates soonest first, others after", () => {
    const items = [
      { id: "late", not_after: "2026-06-01T00:00:00Z", state: "valid" },
      { id: "revoked", not_after: "2026-03-02T00:00:00Z", state: "revoked" },
      { id: "soon", not_after: "2026-03-05T00:00:00Z", state: "valid" },
    ];
    expect(bySoonestExpiry(items).map((i) => i.id)).toEqual(["soon", "late", "revoked"]);
  });
});

describe("small helpers", () => {
  it("passphraseProblem wants 8 characters typed twice alike", () => {
    expect(passphraseProblem("short", "short")).toMatch(/at least 8/);
    expect(passphraseProblem("longenough", "longenougH")).toMatch(/differ/);
    expect(passphraseProblem("longenough", "longenough")).toBeNull();
  });
  it("queryString drops empty filters and encodes the rest", () => {
    expect(queryString({ actor: "", org: "acme", action: undefined, q: "a b" })).toBe("?org=acme&q=a+b");
    expect(queryString({})).toBe("");
  });
});
