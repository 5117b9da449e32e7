import { beforeAll, describe, expect, it } from "vitest";
import "reflect-metadata"; // @peculiar/x509 (tsyringe) needs it loaded first
import * as x509 from "@peculiar/x509";
import { parseCSR, decodeUpload, MAX_CSR_SIZE } from "./csr";

const crypto = globalThis.crypto;

async function makeCSR(gen: Algorithm | EcKeyGenParams | RsaHashedKeyGenParams, sign: Algorithm | EcdsaParams, sans: string[] = ["spiffe://example.org/partners/acme/billing"]): Promise<string> {
  const keys = (await crypto.subtle.generateKey(gen, true, ["sign", "verify"])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=billing",
    keys,
    signingAlgorithm: sign,
    extensions: sans.length ? [new x509.SubjectAlternativeNameExtension(sans.map((v): x509.JsonGeneralName => (v.includes("://") ? { type: "url", value: v } : { type: "dns", value: v })))] : [],
  });
  return csr.toString("pem");
}

const rsa = (bits: number, hash: string): RsaHashedKeyGenParams => ({ name: "RSASSA-PKCS1-v1_5", modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash });

describe("parseCSR", () => {
  const csrs: Record<string, string> = {};
  beforeAll(async () => {
    x509.cryptoProvider.set(crypto);
    csrs.p256 = await makeCSR({ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" } as EcdsaParams);
    csrs.p384 = await makeCSR({ name: "ECDSA", namedCurve: "P-384" }, { name: "ECDSA", hash: "SHA-384" } as EcdsaParams);
    csrs.ed25519 = await makeCSR({ name: "Ed25519" }, { name: "Ed25519" });
    csrs.rsa2048 = await makeCSR(rsa(2048, "SHA-256"), { name: "RSASSA-PKCS1-v1_5" });
    csrs.rsa3072 = await makeCSR(rsa(3072, "SHA-256"), { name: "RSASSA-PKCS1-v1_5" });
    csrs.rsa3072sha1 = await makeCSR(rsa(3072, "SHA-1"), { name: "RSASSA-PKCS1-v1_5" });
    csrs.badSAN = await makeCSR({ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" } as EcdsaParams, ["*.acme.example"]);
  });

  const accepted: Array<[string, string, string]> = [
    ["p256", "ECDSA P-256", "ECDSA-SHA256"],
    ["p384", "ECDSA P-384", "ECDSA-SHA384"],
    ["ed25519", "Ed25519", "Ed25519"],
    ["rsa3072", "RSA 3072", "SHA256-RSA"],
  ];
  it.each(accepted)("accepts a %s CSR and shows its key, signature, subject and SANs", async (name, keyType, sig) => {
    const r = await parseCSR(csrs[name]);
    if (!r.ok) throw new Error(`refused: ${r.problem.rule}: ${r.problem.reason}`);
    expect(r.info.keyType).toBe(keyType);
    expect(r.info.signatureAlgorithm).toBe(sig);
    expect(r.info.subject).toBe("CN=billing");
    expect(r.info.sans).toEqual(["spiffe://example.org/partners/acme/billing"]);
    expect(r.info.signatureValid).toBe(true);
    expect(r.info.problems).toEqual([]);
  });

  const refused: Array<[string, string, RegExp]> = [
    ["rsa2048", "key-type", /RSA key of 2048 bits is too small; the minimum is 3072/],
    ["rsa3072sha1", "signature-algorithm", /SHA1-RSA; MD5 and SHA-1 are broken/],
    ["badSAN", "requested-names", /wildcard/],
  ];
  it.each(refused)("refuses a %s CSR under rule %s", async (name, rule, reason) => {
    const r = await parseCSR(csrs[name]);
    if (!r.ok) throw new Error(`not parsed: ${r.problem.reason}`);
    const p = r.info.problems.find((x) => x.rule === rule);
    expect(p, JSON.stringify(r.info.problems)).toBeDefined();
    expect(p!.reason).toMatch(reason);
  });

  it("refuses a CSR whose self-signature was tampered with", async () => {
    const der = x509.PemConverter.decodeFirst(csrs.p256);
    const bytes = new Uint8Array(der);
    bytes[bytes.length - 5] ^= 0xff; // inside the signature value
    const r = await parseCSR(bytes);
    if (!r.ok) throw new Error(`not parsed: ${r.problem.reason}`);
    expect(r.info.problems.map((p) => p.rule)).toContain("proof-of-possession");
    expect(r.info.signatureValid).toBe(false);
  });

  it("accepts DER uploads and converts them to PEM", async () => {
    const der = new Uint8Array(x509.PemConverter.decodeFirst(csrs.p256));
    const r = await parseCSR(der);
    expect(r.ok && r.info.pem.replace(/\r/g, "").trim()).toBe(csrs.p256.replace(/\r/g, "").trim());
  });

  const garbage: Array<[string, string | Uint8Array, string, RegExp]> = [
    ["empty text", "   ", "size", /empty/],
    ["oversized upload", "x".repeat(MAX_CSR_SIZE + 1), "size", /at most 65536 bytes/],
    ["plain text", "hello, I am not a CSR", "encoding", /neither PEM nor DER/],
    ["a certificate PEM", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "encoding", /type "CERTIFICATE"/],
    ["broken base64", "-----BEGIN CERTIFICATE REQUEST-----\n@@@@\n-----END CERTIFICATE REQUEST-----\n", "encoding", /damaged/],
    ["random DER", new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x05]), "syntax", /not a valid PKCS#10/],
    ["valid base64 of junk", "-----BEGIN CERTIFICATE REQUEST-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE REQUEST-----\n", "syntax", /not a valid PKCS#10/],
  ];
  it.each(garbage)("refuses %s with a reason", async (_name, input, rule, reason) => {
    const r = await parseCSR(input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problem.rule).toBe(rule);
    expect(r.problem.reason).toMatch(reason);
  });

  it("refuses two CSRs pasted together", async () => {
    const r = decodeUpload(csrs.p256 + "\n" + csrs.p384);
    expect("problem" in r && r.problem.reason).toMatch(/more than one PEM block/);
  });
});
