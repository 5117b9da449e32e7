import { describe, expect, it } from "vitest";
import { approveBlock, bindingStatus, clientCommands, estCodeCommand, mayMakeCode, mayRevoke, mayTakeKey, requestChannel, type ACMEBinding } from "./acme";

const now = new Date("2026-06-01T12:00:00Z");
const binding: ACMEBinding = {
  id: "b1",
  org: "acme",
  name: "ci",
  dns_names: ["*.dev.acme.example"],
  validity_days: 0,
  state: "requested",
  requested_by: "partner",
  expires_at: "2026-09-01T00:00:00Z",
  created_at: "2026-05-01T00:00:00Z",
};
const admin = { subject: "admin", role: "admin" as const, org: "" };
const partner = { subject: "partner", role: "partner" as const, org: "acme" };
const other = { subject: "gil", role: "partner" as const, org: "globex" };
const auditor = { subject: "aud", role: "auditor" as const, org: "" };

describe("bindingStatus", () => {
  it.each([
    ["requested", "2026-09-01T00:00:00Z", "requested"],
    ["approved", "2026-09-01T00:00:00Z", "approved"],
    ["approved", "2026-05-01T00:00:00Z", "expired"],
    ["requested", "2026-06-01T12:00:00Z", "expired"],
    ["revoked", "2026-05-01T00:00:00Z", "revoked"],
  ] as const)("a %s binding expiring %s reads %s", (state, expires_at, want) => {
    expect(bindingStatus({ state, expires_at }, now)).toBe(want);
  });
});

describe("approveBlock", () => {
  it("lets another admin approve a requested binding", () => expect(approveBlock(binding, admin, now)).toBeNull());
  it("refuses the admin who asked, saying why", () =>
    expect(approveBlock({ ...binding, requested_by: "admin" }, admin, now)).toMatch(/another admin must approve/));
  it("refuses partners and auditors", () => {
    expect(approveBlock(binding, partner, now)).toMatch(/Only an admin/);
    expect(approveBlock(binding, auditor, now)).toMatch(/Only an admin/);
  });
  it("refuses a binding already approved or expired", () => {
    expect(approveBlock({ ...binding, state: "approved" }, admin, now)).toBe("The binding is approved.");
    expect(approveBlock({ ...binding, expires_at: "2026-01-01T00:00:00Z" }, admin, now)).toBe("The binding is expired.");
  });
});

describe("who may act on a binding", () => {
  const approved = { ...binding, state: "approved" as const, approved_by: "admin" };
  it("hands the key to its requester once", () => {
    expect(mayTakeKey(approved, partner, now)).toBe(true);
    expect(mayTakeKey({ ...approved, key_shown_at: "2026-05-02T00:00:00Z" }, partner, now)).toBe(false);
    expect(mayTakeKey(approved, admin, now)).toBe(false);
    expect(mayTakeKey(binding, partner, now)).toBe(false);
  });
  it("lets an admin or the organisation's partner revoke, never an auditor or another organisation", () => {
    expect(mayRevoke(approved, admin)).toBe(true);
    expect(mayRevoke(approved, partner)).toBe(true);
    expect(mayRevoke(approved, other)).toBe(false);
    expect(mayRevoke(approved, auditor)).toBe(false);
    expect(mayRevoke({ ...approved, state: "revoked" }, admin)).toBe(false);
  });
  it("makes EST codes only for a usable binding", () => {
    expect(mayMakeCode(approved, partner, now)).toBe(true);
    expect(mayMakeCode(approved, other, now)).toBe(false);
    expect(mayMakeCode(binding, partner, now)).toBe(false);
    expect(mayMakeCode({ ...approved, expires_at: "2026-01-01T00:00:00Z" }, admin, now)).toBe(false);
  });
});

describe("clientCommands", () => {
  const cmds = clientCommands({ eab_kid: "kid-1", eab_hmac_key: "hmac_KEY-1", directory: "https://certdesk.example/acme/directory", dns_names: ["*.dev.acme.example"] });
  it("gives certbot the directory, the key id, the key and a name inside the scope", () => {
    expect(cmds.certbot).toContain("--server https://certdesk.example/acme/directory");
    expect(cmds.certbot).toContain("--eab-kid kid-1 --eab-hmac-key=hmac_KEY-1");
    expect(cmds.certbot).toContain("-d host.dev.acme.example");
  });
  it("gives lego the same", () => {
    expect(cmds.lego).toContain("--eab --kid kid-1 --hmac=hmac_KEY-1");
    expect(cmds.lego).toContain("--domains host.dev.acme.example run");
  });
  it("joins a key that begins with a dash to its option, so certbot does not take it for one", () => {
    const dash = clientCommands({ eab_kid: "k", eab_hmac_key: "-Zq3", directory: "d", dns_names: ["web.acme.example"] });
    expect(dash.certbot).toContain("--eab-hmac-key=-Zq3 ");
    expect(dash.lego).toContain("--hmac=-Zq3 ");
  });
  it("uses an exact name as it is", () =>
    expect(clientCommands({ eab_kid: "k", eab_hmac_key: "h", directory: "d", dns_names: ["web.acme.example"] }).certbot).toContain("-d web.acme.example"));
  it("shows the EST code as the password of the user code", () =>
    expect(estCodeCommand({ username: "code", code: "abc", simpleenroll: "https://x/.well-known/est/simpleenroll" })).toContain("--user 'code:abc'"));
});

describe("requestChannel", () => {
  it.each([
    [{}, "Portal", []],
    [{ via: "acme", via_ref: "binding/b1 account/a1 order/o1" }, "ACME", [{ kind: "binding", id: "b1" }, { kind: "account", id: "a1" }, { kind: "order", id: "o1" }]],
    [{ via: "est", via_ref: "binding/b1" }, "EST", [{ kind: "binding", id: "b1" }]],
    [{ requested_by: "certificate:0A1B" }, "mTLS renewal", [{ kind: "certificate", id: "0A1B" }]],
    [{ requested_by: "carol" }, "Portal", []],
  ])("%o comes through %s", (r, label, refs) => {
    const c = requestChannel(r);
    expect(c.label).toBe(label);
    expect(c.refs).toEqual(refs);
  });
});
