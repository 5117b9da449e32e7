import { describe, expect, it } from "vitest";
import { issuanceText } from "./issuance";

describe("issuanceText", () => {
  it.each([
    [{ issuance: "pending" as const }, "approved — waiting for the HSM"],
    [{ issuance: "failed" as const, failure_reason: "namespace: outside acme" }, "approved — issuance failed: namespace: outside acme"],
    [{ issuance: "failed" as const }, "approved — issuance failed"],
    [{}, "approved — the certificate is being issued"],
  ])("describes %o", (r, want) => {
    expect(issuanceText(r)).toContain(want);
  });
});
