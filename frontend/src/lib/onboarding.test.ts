import { describe, expect, it } from "vitest";
import { invitationStateText, invitationsPath, inviteEmailProblem, memberPath, requestOrg, userNote } from "./onboarding";

describe("memberPath", () => {
  it.each([
    ["acme", "newbie", "/api/v1/orgs/acme/members/newbie"],
    ["acme", "auth0|5f/x#y%z", "/api/v1/orgs/acme/members/auth0%7C5f%2Fx%23y%25z"],
  ])("encodes %s / %s", (slug, subject, want) => {
    expect(memberPath(slug, subject)).toBe(want);
  });
});

describe("invitationsPath", () => {
  it("lists and addresses one invitation", () => {
    expect(invitationsPath("acme")).toBe("/api/v1/orgs/acme/invitations");
    expect(invitationsPath("acme", "1/2")).toBe("/api/v1/orgs/acme/invitations/1%2F2");
  });
});

describe("requestOrg", () => {
  it.each([
    [{ role: "partner", org: "acme" }, "", { org: "acme", problem: "" }],
    [{ role: "partner", org: "acme" }, "globex", { org: "acme", problem: "" }], // a partner cannot choose
    [{ role: "admin", org: "" }, "", { org: "", problem: "choose the organisation the certificate is for" }],
    [{ role: "admin", org: "" }, "globex", { org: "globex", problem: "" }],
  ])("%o choosing %s", (me, chosen, want) => {
    expect(requestOrg(me, chosen)).toEqual(want);
  });
  it("tells a partner without organisation whom to ask", () => {
    expect(requestOrg({ role: "partner", org: "" }, "").problem).toContain("administrator");
  });
});

describe("userNote", () => {
  it.each([
    [{ role: "partner" as const, email: "a@b.example", email_verified: true }, ""],
    [{ role: "" as const, email: "a@b.example", email_verified: true }, "no certdesk role"],
    [{ role: "partner" as const, email: "a@b.example", email_verified: false }, "not verified"],
  ])("%o", (u, want) => {
    if (want === "") expect(userNote(u)).toBe("");
    else expect(userNote(u)).toContain(want);
  });
});

describe("invitationStateText", () => {
  it.each([
    [{ state: "pending" as const }, "pending"],
    [{ state: "expired" as const }, "expired"],
    [{ state: "accepted" as const, accepted_by: "newbie" }, "accepted by newbie"],
  ])("%o", (inv, want) => {
    expect(invitationStateText(inv)).toBe(want);
  });
});

describe("inviteEmailProblem", () => {
  it.each([
    ["nia@acme.example", ""],
    ["", "enter"],
    [" nia@acme.example", "spaces"],
    ["Nia <nia@acme.example>", "spaces"],
    ["<nia@acme.example>", "name@example.org"],
    ["nia", "name@example.org"],
  ])("%s", (email, want) => {
    if (want === "") expect(inviteEmailProblem(email)).toBe("");
    else expect(inviteEmailProblem(email)).toContain(want);
  });
});
