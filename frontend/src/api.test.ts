import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError, chronological, eventDetail, revocationReasons, setCSRFToken, type AuditEvent } from "./api";
import { errorText } from "./components";
import { match } from "./router";

afterEach(() => vi.unstubAllGlobals());

function answerFetchWith(status: number, body: string) {
  const calls: { url: string; init: RequestInit }[] = [];
  vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return new Response(body, { status, headers: { "Content-Type": "application/problem+json" } });
  });
  return calls;
}

describe("api", () => {
  it("sends the CSRF token and JSON on state-changing calls, not on reads", async () => {
    setCSRFToken("csrf-123");
    const calls = answerFetchWith(200, "{}");
    await api("/api/v1/requests/r1/approve", { body: { reason: "ok" } });
    await api("/api/v1/requests");
    const post = calls[0].init.headers as Record<string, string>;
    expect(calls[0].init.method).toBe("POST");
    expect(post["X-CSRF-Token"]).toBe("csrf-123");
    expect(post["Content-Type"]).toBe("application/json");
    expect(calls[0].init.body).toBe('{"reason":"ok"}');
    expect((calls[1].init.headers as Record<string, string>)["X-CSRF-Token"]).toBeUndefined();
  });

  const failures: Array<[string, number, string, string]> = [
    ["a problem with a rule shows detail and rule", 422, '{"title":"Unprocessable","status":422,"detail":"RSA key of 2048 bits is too small","rule":"key-type"}', "RSA key of 2048 bits is too small (rule: key-type)"],
    ["a problem without detail shows its title", 403, '{"title":"Forbidden","status":403}', "Forbidden"],
    ["a non-JSON error says what the server answered", 502, "<html>bad gateway</html>", "the server answered 502 "],
  ];
  it.each(failures)("%s", async (_n, status, body, want) => {
    answerFetchWith(status, body);
    const err = (await api("/api/v1/x").catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(status);
    expect(errorText(err)).toBe(want);
  });

  it("reads the revocation reasons from the server", async () => {
    const items = [{ name: "superseded", code: 4, label: "Superseded", roles: ["admin", "partner"] }];
    const calls = answerFetchWith(200, JSON.stringify({ items, next: "" }));
    expect(await revocationReasons()).toEqual(items);
    expect(calls.map((c) => [c.url, c.init.method])).toEqual([["/api/v1/revocation/reasons", "GET"]]);
  });

  it("turns a network failure into a readable error", async () => {
    vi.stubGlobal("fetch", async () => {
      throw new TypeError("Failed to fetch");
    });
    const err = await api("/api/v1/me").catch((e) => e);
    expect(errorText(err)).toMatch(/could not be reached/);
  });
});

describe("router match", () => {
  const cases: Array<[string, string, Record<string, string> | null]> = [
    ["/requests/:id", "/requests/abc", { id: "abc" }],
    ["/requests/:id", "/requests/a%20b", { id: "a b" }],
    ["/requests/:id", "/requests", null],
    ["/certificates/:id", "/requests/abc", null],
  ];
  it.each(cases)("match(%s, %s)", (pattern, path, want) => {
    expect(match(pattern, path)).toEqual(want);
  });
});

describe("audit events", () => {
  const ev = (seq: number, detail: unknown) => ({ seq, detail }) as AuditEvent;

  it("reads the detail from the canonical JSON text the API sends", () => {
    expect(eventDetail(ev(1, '{"reason":"contract checked"}')).reason).toBe("contract checked");
  });

  it("keeps a detail that is already an object, and survives text that is not JSON", () => {
    expect(eventDetail(ev(1, { reason: "ok" })).reason).toBe("ok");
    expect(eventDetail(ev(1, "not json"))).toEqual({ text: "not json" });
    expect(eventDetail(ev(1, null))).toEqual({});
  });

  it("orders a request's and its certificate's events by chain position", () => {
    const merged = [ev(5, ""), ev(3, ""), ev(7, ""), ev(6, "")];
    expect(chronological(merged).map((e) => e.seq)).toEqual([3, 5, 6, 7]);
    expect(merged.map((e) => e.seq)).toEqual([5, 3, 7, 6]);
  });
});
